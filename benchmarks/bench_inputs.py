"""Benchmark: validate + sha256 of local JSONL inputs, throughput and peak memory.

    .venv/bin/python -m benchmarks.bench_inputs              # 64 MB and 512 MB side by side
    .venv/bin/python -m benchmarks.bench_inputs --size-mb 128 --size-mb 512

Each size is generated in a temporary folder (chat requests of realistic size, unique
custom_ids, so the custom_id index spills to SQLite beyond its in-memory bound), then
checked in a fresh child process so that its peak RSS is its own. Memory should not grow
with the file size; throughput is reported in MB/s of input, beside sha256 alone over the
same bytes in the same child (best of three, the file already in the page cache).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

_MB = 1024 * 1024
_CHILD_TIMEOUT = 600.0

# The child's own peak RSS: VmHWM belongs to its address space. (Linux carries
# ru_maxrss over fork and exec, so a child of a big benchmark process would report the
# parent's peak instead of its own.)
_PEAK = """
def peak_kb():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
"""

_CHILD = (
    _PEAK
    + """
import hashlib, json, sys, time
from pathlib import Path
from reconciler.inputs import check_input
path = Path(sys.argv[1])
def sha_alone():
    start = time.perf_counter()
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return time.perf_counter() - start
sha_alone()  # the file into the page cache, for both measures alike
sha_seconds = min(sha_alone() for _ in range(3))
start = time.perf_counter()
local, problems = check_input(path)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "sha_seconds": sha_seconds, "peak_rss_kb": peak_kb(),
                  "lines": local.lines, "size": local.size, "problems": len(problems)}))
"""
)

_BASELINE = (
    _PEAK
    + """
import json
import reconciler.inputs
print(json.dumps({"peak_rss_kb": peak_kb()}))
"""
)


def generate(path: Path, size_mb: int) -> int:
    """Write at most ``size_mb`` MB of chat requests to ``path`` (512 MB is the API's
    limit, so the largest size is still a valid input); returns the line count."""
    target = size_mb * _MB - 64 * 1024  # whole chunks of ~350 KB: stay under the target
    written = 0
    lines = 0
    topics = ["billing", "sync", "login", "sharing", "invoices", "mobile app", "API keys"]
    with path.open("w", encoding="utf-8") as out:
        while written < target - 400 * 1024:
            chunk = []
            for _ in range(1000):
                topic = topics[lines % len(topics)]
                line = json.dumps(
                    {
                        "custom_id": f"req-{lines:09d}",
                        "body": {
                            "max_tokens": 128,
                            "temperature": 0.2,
                            "messages": [
                                {"role": "system", "content": "You triage support tickets."},
                                {
                                    "role": "user",
                                    "content": f"Ticket {lines}: a question about {topic}."
                                    " The customer writes that it stopped working after the"
                                    " last update and asks for help — détails en français.",
                                },
                            ],
                        },
                    },
                    ensure_ascii=False,
                )
                chunk.append(line)
                lines += 1
            data = "\n".join(chunk) + "\n"
            out.write(data)
            written += len(data.encode("utf-8"))
    return lines


def _child(code: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=_CHILD_TIMEOUT,  # 512 MB takes seconds; a hang must not hold the run
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def run(size_mb: int) -> dict[str, Any]:
    """Generate ``size_mb`` MB of JSONL, validate and hash it in a child process.

    Returns size, lines, seconds, throughput (MB/s), the child's peak RSS and, for
    reference, the peak RSS of a child that only imports the module."""
    with tempfile.TemporaryDirectory(prefix="bench-inputs-") as tmp:
        path = Path(tmp) / "requests.jsonl"
        generate(path, size_mb)
        measured = _child(_CHILD, str(path))
    baseline = _child(_BASELINE)
    if measured["problems"]:
        raise RuntimeError(f"generated input has {measured['problems']} problems")
    size = measured["size"]
    return {
        "benchmark": "inputs",
        "size_mb": round(size / _MB, 1),
        "lines": measured["lines"],
        "seconds": round(measured["seconds"], 2),
        "mb_per_s": round(size / _MB / measured["seconds"], 1),
        "sha_mb_per_s": round(size / _MB / measured["sha_seconds"], 1),
        "ratio": round(measured["seconds"] / measured["sha_seconds"], 1),
        "peak_rss_mb": round(measured["peak_rss_kb"] / 1024, 1),
        "baseline_rss_mb": round(baseline["peak_rss_kb"] / 1024, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size-mb",
        type=int,
        action="append",
        help="input size in MB (repeatable; default: 64 and 512)",
    )
    args = parser.parse_args(argv)
    sizes = args.size_mb or [64, 512]
    if len(sizes) == 1 and sizes[0] != 64:
        sizes = [64, sizes[0]]  # side by side with a small size: memory must not grow
    print(f"{'size':>9} {'lines':>10} {'time':>8} {'throughput':>11} {'peak RSS':>9}")
    results = []
    for size in sizes:
        r = run(size)
        results.append(r)
        print(
            f"{r['size_mb']:>6.1f} MB {r['lines']:>10,} {r['seconds']:>7.2f}s"
            f" {r['mb_per_s']:>7.1f} MB/s {r['peak_rss_mb']:>6.1f} MB"
            f"  (sha256 alone {r['sha_mb_per_s']:.0f} MB/s: {r['ratio']}x)"
        )
    print(
        f"(a child that only imports reconciler.inputs peaks at {results[0]['baseline_rss_mb']} MB)"
    )


if __name__ == "__main__":
    main()
