"""Benchmark: a job of 1,000,000 requests through the request stream, in constant memory.

    .venv/bin/python -m benchmarks.bench_requests                 # 100k and 1M side by side
    .venv/bin/python -m benchmarks.bench_requests --requests 20000

For each size, a JSONL job (~1.1 KB a request: 1M requests is over 1 GB) and synthetic
result files (an output file per shard, 1 % of the requests failed in an error file, and a
retry's files for those) are generated in a temporary folder. A fresh child process then
runs, timing each step and the sha256 of the same bytes beside it:

1. validate + hash + shard (``reconciler.inputs.check_job_inputs``, default limits);
(limits: ``max_requests_per_job`` 50,000 by default, so that both sizes are split: 2 and
20 shards)

2. build every shard file (``reconciler.stream.build.build_shard``);
3. merge the outputs of every shard and retry (``reconciler.stream.merge.merge``).

The child's own peak RSS (``VmHWM``) is reported; it should not depend on the size.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.bench_inputs import _PEAK

_CHILD_TIMEOUT = 900.0

_CHILD = (
    _PEAK
    + """
import hashlib, json, sys, time
from pathlib import Path
from reconciler.config.model import Limits
from reconciler.inputs import InputFile, check_job_inputs
from reconciler.stream import build, merge

root = Path(sys.argv[1])
limits = Limits(max_requests_per_job=int(sys.argv[2]))
data = root / "data" / "job.jsonl"

def sha_of(paths):
    start = time.perf_counter()
    size = 0
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb", buffering=0) as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    return time.perf_counter() - start, size

out = {}
sha_seconds, size = sha_of([data])
start = time.perf_counter()
job = check_job_inputs([InputFile(data, "data/job.jsonl", "data/job.jsonl")], limits=limits)
out["validate"] = {"seconds": time.perf_counter() - start, "sha_seconds": sha_seconds,
                   "bytes": size, "requests": job.locals[0].lines,
                   "shards": len(job.shards), "problems": len(job.problems)}
start = time.perf_counter()
built = [build.build_shard(root, [data], shard) for shard in job.shards]
seconds = time.perf_counter() - start
out["build"] = {"seconds": seconds, "sha_seconds": sha_of([data])[0],
                "files": len(built), "bytes": sum(b.size for b in built)}
results = sorted((root / "results").iterdir())
sha_seconds, size = sha_of(results)
attempts = []
for path in results:
    attempt = 2 if path.name.startswith("retry") else 1
    kind = "errors" if path.name.endswith(".errors.jsonl") else "output"
    fh = path.open("rb")
    attempts.append(merge.Attempt(attempt, **{kind: fh}))
start = time.perf_counter()
with open(root / "merged.jsonl", "wb") as sink:
    merged = merge.merge(attempts, sink)
out["merge"] = {"seconds": time.perf_counter() - start, "sha_seconds": sha_seconds,
                "bytes": size, "written": merged.written, "succeeded": merged.succeeded,
                "failed": merged.failed}
out["peak_rss_kb"] = peak_kb()
print(json.dumps(out))
"""
)

_PAD = "Please classify this support ticket and draft a short, polite answer. " * 14


def generate(root: Path, requests: int, max_requests: int = 100_000) -> None:
    """The job's input, and result files as the API would write them for its shards."""
    (root / "data").mkdir()
    (root / "results").mkdir()
    template = (
        '{"custom_id": "req-%08d", "body": {"max_tokens": 64, "messages": [{"role": "user",'
        ' "content": "Ticket %d: ' + _PAD + '"}]}}\n'
    )
    with (root / "data" / "job.jsonl").open("w") as fh:
        for start in range(0, requests, 10_000):
            fh.write(
                "".join(template % (i, i) for i in range(start, min(requests, start + 10_000)))
            )
    ok = '{"id": "b-%d", "custom_id": "req-%08d", "response": {"status_code": 200, "body": {"choices": [{"message": {"content": "Billing: we are on it."}}]}}, "error": null}\n'  # noqa: E501
    bad = '{"id": "b-%d", "custom_id": "req-%08d", "response": {"status_code": 429, "body": {"message": "rate limited"}}, "error": {"message": "rate limited"}}\n'  # noqa: E501
    for shard, start in enumerate(range(0, requests, max_requests)):
        ids = range(start, min(requests, start + max_requests))
        # Result files are not in input order: the API does not promise any.
        order = sorted(ids, key=lambda i: (i * 7919) % max_requests)
        with (root / "results" / f"shard-{shard:03d}.output.jsonl").open("w") as fh:
            fh.write("".join(ok % (shard, i) for i in order if i % 100))
        with (root / "results" / f"shard-{shard:03d}.errors.jsonl").open("w") as fh:
            fh.write("".join(bad % (shard, i) for i in order if not i % 100))
        with (root / "results" / f"retry-{shard:03d}.output.jsonl").open("w") as fh:
            fh.write("".join(ok % (shard, i) for i in order if not i % 100 and i % 300))
        with (root / "results" / f"retry-{shard:03d}.errors.jsonl").open("w") as fh:
            fh.write("".join(bad % (shard, i) for i in order if not i % 300))


def run(requests: int, max_requests: int = 50_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-requests-") as tmp:
        root = Path(tmp)
        generate(root, requests, max_requests)
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, str(root), str(max_requests)],
            capture_output=True,
            text=True,
            check=True,
            timeout=_CHILD_TIMEOUT,
        )
    measured: dict[str, Any] = json.loads(result.stdout)
    if measured["validate"]["problems"]:
        raise RuntimeError("generated input has problems")
    measured["requests"] = requests
    measured["max_requests"] = max_requests
    measured["peak_rss_mb"] = round(measured.pop("peak_rss_kb") / 1024, 1)
    for step in ("validate", "build", "merge"):
        m = measured[step]
        m["ratio"] = round(m["seconds"] / m["sha_seconds"], 1) if m["sha_seconds"] else None
    return {"benchmark": "requests", **measured}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, action="append")
    parser.add_argument("--max-requests-per-job", type=int, default=50_000)
    args = parser.parse_args(argv)
    for n in args.requests or [100_000, 1_000_000]:
        print(json.dumps(run(n, args.max_requests_per_job)))


if __name__ == "__main__":
    main()
