"""Benchmark: cost estimation throughput and memory, beside the validation pass.

    .venv/bin/python -m benchmarks.bench_cost                 # 64 MB and 512 MB
    .venv/bin/python -m benchmarks.bench_cost --size-mb 16    # 64 MB and 16 MB

The chat-request JSONL of the inputs benchmark is generated once per size; then, each in
a fresh child process (so that its peak RSS is its own), on the same file in the same run:

- **validate**: ``reconciler.inputs.check_input`` (the validation and hashing every plan
  does anyway): the baseline;
- **heuristic**: ``estimate_lines`` with the heuristic counter (``mistral-small-2603``,
  whose tokenizer mistral-common does not ship);
- **exact**: ``estimate_lines`` with Mistral's own tokenizer (``open-mistral-nemo-2407``:
  tekken_240718.json through mistral-common), when mistral-common is installed.

Each reports requests/s, MB/s, its time as a ratio of the validation pass's, and its peak
RSS (``VmHWM``); memory should not grow with the file. The exact counter's load time
(reading the tokenizer file) is measured apart and not in its throughput.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_inputs import _PEAK, generate

_MB = 1024 * 1024
_CHILD_TIMEOUT = 900.0  # the exact pass over 512 MB takes minutes: bounded all the same
HEURISTIC_MODEL = "mistral-small-2603"
EXACT_MODEL = "open-mistral-nemo-2407"

_VALIDATE = (
    _PEAK
    + """
import json, sys, time
from pathlib import Path
from reconciler.inputs import check_input
path = Path(sys.argv[1])
start = time.perf_counter()
local, problems = check_input(path)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_kb": peak_kb(), "requests": local.lines,
                  "size": local.size, "problems": len(problems)}))
"""
)

_ESTIMATE = (
    _PEAK
    + """
import json, os, sys, time
from pathlib import Path
from reconciler.cost.estimate import estimate_lines
from reconciler.cost.tokenizers import counter_for
path, model = Path(sys.argv[1]), sys.argv[2]
start = time.perf_counter()
counter = counter_for(model)
counter.count_text("load the tokenizer before the clock starts")
loaded = time.perf_counter() - start
start = time.perf_counter()
with path.open("rb") as lines:
    estimate = estimate_lines(lines, "/v1/chat/completions", counter)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "load_seconds": loaded, "peak_rss_kb": peak_kb(),
                  "requests": estimate.requests, "size": os.path.getsize(path),
                  "input_tokens": estimate.input_tokens, "method": estimate.method,
                  "counter": counter.name}))
"""
)


def _child(code: str, *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=_CHILD_TIMEOUT,
    )
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def exact_available() -> bool:
    return importlib.util.find_spec("mistral_common") is not None


def _summary(r: dict[str, Any], baseline: float) -> dict[str, Any]:
    size_mb = r["size"] / _MB
    return {
        "seconds": round(r["seconds"], 2),
        "requests_per_s": round(r["requests"] / r["seconds"]),
        "mb_per_s": round(size_mb / r["seconds"], 1),
        "ratio": round(r["seconds"] / baseline, 1),
        "peak_rss_mb": round(r["peak_rss_kb"] / 1024, 1),
        **{k: r[k] for k in ("load_seconds", "input_tokens", "method", "counter") if k in r},
    }


def run(size_mb: int) -> dict[str, Any]:
    """Generate ``size_mb`` MB of chat requests; validate, then estimate them both ways."""
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        path = Path(tmp) / "requests.jsonl"
        generate(path, size_mb)
        validate = _child(_VALIDATE, str(path))
        if validate["problems"]:
            raise RuntimeError(f"generated input has {validate['problems']} problems")
        heuristic = _child(_ESTIMATE, str(path), HEURISTIC_MODEL)
        exact = _child(_ESTIMATE, str(path), EXACT_MODEL) if exact_available() else None
    for r in (heuristic, exact):
        if r is not None and r["requests"] != validate["requests"]:
            raise RuntimeError(f"estimated {r['requests']} requests of {validate['requests']}")
    base = validate["seconds"]
    return {
        "benchmark": "cost",
        "size_mb": round(validate["size"] / _MB, 1),
        "requests": validate["requests"],
        "validate": _summary(validate, base),
        "heuristic": _summary(heuristic, base),
        "exact": _summary(exact, base) if exact is not None else None,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, action="append", help="input size (repeatable)")
    args = parser.parse_args(argv)
    sizes = args.size_mb or [64, 512]
    if len(sizes) == 1 and sizes[0] != 64:
        sizes = [64, sizes[0]]  # side by side with a small size: memory must not grow
    head = ("size", 9), ("pass", 10), ("time", 8), ("req/s", 9), ("MB/s", 7), ("x validate", 10)
    print(" ".join(f"{h:>{w}}" for h, w in head), f"{'RSS':>7}")
    for size in sizes:
        r = run(size)
        for name in ("validate", "heuristic", "exact"):
            m = r[name]
            if m is None:
                print(f"{r['size_mb']:>6.1f} MB {name:>10}  (mistral-common not installed)")
                continue
            print(
                f"{r['size_mb']:>6.1f} MB {name:>10} {m['seconds']:>7.2f}s"
                f" {m['requests_per_s']:>9,} {m['mb_per_s']:>7.1f} {m['ratio']:>9.1f}x"
                f" {m['peak_rss_mb']:>5.1f}MB"
            )


if __name__ == "__main__":
    main()
