"""What every benchmark shares: the machine it ran on, a served emulator in a child process,
and the one results table."""

from __future__ import annotations

import os
import platform
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SERVER_START_TIMEOUT = 30.0
SERVER_STOP_TIMEOUT = 10.0
BENCH_TOKEN = "bench-token"


def machine() -> dict[str, str]:
    """nproc, the CPU model, Python and the date: printed with every table."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ),
        "cpu": model,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        # Other processes compete for the same CPUs: the timings mean little when this is high.
        "load": " ".join(f"{x:.1f}" for x in os.getloadavg()),
    }


@contextmanager
def served_emulator(db_path: Path, *flags: str) -> Iterator[str]:
    """``reconciler emulator serve --port 0 --db DB FLAGS`` in a child process, on 127.0.0.1;
    yields its URL and stops it (SIGTERM, then SIGKILL) however the block ends.

    A separate process, as the real API is: the server's work does not share the
    benchmark's interpreter (nor its GIL)."""
    stderr_path = db_path.with_name(db_path.name + ".stderr")
    command = [sys.executable, "-m", "reconciler", "emulator", "serve", "--host", "127.0.0.1"]
    command += ["--port", "0", "--db", str(db_path), *flags]
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    assert process.stdout is not None
    stdout = process.stdout
    try:
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
        try:
            line = lines.get(timeout=SERVER_START_TIMEOUT)
        except queue.Empty:
            line = ""
        prefix = "Emulator listening on "
        if not line.startswith(prefix):
            raise RuntimeError(
                f"the emulator did not start: {line!r}\n{stderr_path.read_text(errors='replace')}"
            )
        yield line[len(prefix) :].strip()
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        stdout.close()


@dataclass(frozen=True)
class Row:
    """One line of the results table."""

    benchmark: str
    measure: str
    result: str
    compared: str = ""  # the side-by-side figure (baseline, or the other setting) and ratio
    target: str = ""
    met: bool | None = None  # None: information, no target


def table(rows: Sequence[Row]) -> str:
    """Fixed-width text table; a last column says whether each target is met."""
    header = ("benchmark", "measure", "result", "side by side", "target", "")  # last: met?
    cells = [
        (
            r.benchmark,
            r.measure,
            r.result,
            r.compared,
            r.target,
            "" if r.met is None else ("met" if r.met else "MISSED"),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]

    def fmt(line: Sequence[str]) -> str:
        return "  ".join(
            cell.ljust(width) for cell, width in zip(line, widths, strict=True)
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [fmt(header), rule]
    previous = None
    for row, line in zip(rows, cells, strict=True):
        if row.benchmark != previous and previous is not None:
            out.append("")
        first = row.benchmark != previous  # the name once per group
        previous = row.benchmark
        out.append(fmt(line if first else ("", *line[1:])))
    return "\n".join(out)


def seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.1f} ms"
