"""Benchmark: validating a matrix of many jobs over one big rows file (``prompts:``).

    .venv/bin/python -m benchmarks.bench_matrix                      # 1,000 x 100k rows
    .venv/bin/python -m benchmarks.bench_matrix --combinations 100 --rows 10000

One entry expands to N combinations (2 models x N/2 variants), every job generating its
requests from the same JSONL rows file. Each measure runs in a fresh child process (its
peak RSS is its own):

- ``load()`` of that root at two rows-file sizes (10x apart): time should grow about
  linearly with the rows, memory not at all;
- ``load()`` at a tenth of the combinations over the big file: the matrix's share;
- side by side, the bare YAML parse of the job file, and ``load()`` of the same N jobs
  reading the same requests as a plain JSONL ``inputs:`` file;
- generating one job's requests (what apply uploads), in requests per second.
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
from benchmarks.common import Row, seconds

_CHILD_TIMEOUT = 600.0

_LOAD = (
    _PEAK
    + """
import json, sys, time
from pathlib import Path
from reconciler.config.loader import load
start = time.perf_counter()
state = load(Path(sys.argv[1]))
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_kb": peak_kb(), "jobs": len(state.jobs),
                  "requests": sum(j.request_count or 0 for j in state.jobs)}))
"""
)

_PARSE = (
    _PEAK
    + """
import json, sys, time
from pathlib import Path
from reconciler.config.yamlload import parse_file
start = time.perf_counter()
result = parse_file(Path(sys.argv[1]), "jobs.yaml")
seconds = time.perf_counter() - start
assert result.doc is not None and not result.problems
print(json.dumps({"seconds": seconds, "peak_rss_kb": peak_kb()}))
"""
)

_GENERATE = (
    _PEAK
    + """
import json, sys, time
from pathlib import Path
from reconciler.config.loader import load
from reconciler.config.prompts import iter_request_lines
root = Path(sys.argv[1])
job = load(root).jobs[0]
start = time.perf_counter()
n = size = 0
with open(sys.argv[2], "wb") as out:
    for line in iter_request_lines(root, job.prompts):
        out.write(line)
        n += 1
        size += len(line)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak_rss_kb": peak_kb(), "requests": n, "bytes": size}))
"""
)

CONFIG = """\
version: 1
workspace: bench
server: local
defaults: {endpoint: /v1/chat/completions, model: mistral-small-latest}
"""


def _matrix_job(combinations: int, source: str) -> str:
    variants = ", ".join(f"v{i:04d}" for i in range(max(1, combinations // 2)))
    return f"""\
jobs:
  eval-${{{{ matrix.model }}}}-${{{{ matrix.variant }}}}:
    matrix:
      model: [mistral-small-latest, mistral-medium-latest]
      variant: [{variants}]
    model: ${{{{ matrix.model }}}}
    metadata: {{variant: "${{{{ matrix.variant }}}}"}}
{source}"""


PROMPTS = """\
    prompts:
      rows: ../data/rows.jsonl
      custom_id: ${{ row.id }}
      body:
        max_tokens: ${{ row.max_tokens }}
        messages:
          - {role: system, content: You answer questions about Nimbus Cloud Storage.}
          - {role: user, content: "Question: ${{ row.question }}"}
"""
INPUTS = "    inputs: [../data/requests.jsonl]\n"


def _write_rows(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for i in range(rows):
            row = {
                "id": f"q-{i:07d}",
                "question": f"How do I restore file number {i} from last week's backup?",
                "max_tokens": 100 + i % 200,
            }
            out.write(json.dumps(row) + "\n")


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


def _root(tmp: Path, name: str, combinations: int, rows: int, *, inputs: bool = False) -> Path:
    root = tmp / name
    (root / "jobs").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "reconciler.yaml").write_text(CONFIG)
    (root / "jobs" / "eval.yaml").write_text(
        _matrix_job(combinations, INPUTS if inputs else PROMPTS)
    )
    _write_rows(root / "data" / "rows.jsonl", rows)
    return root


def _measure(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "seconds": round(result["seconds"], 3),
        "peak_rss_mb": round(result["peak_rss_kb"] / 1024, 1),
        **{k: result[k] for k in ("jobs", "requests") if k in result},
    }


def run(combinations: int, rows: int) -> dict[str, Any]:
    """Every measure of the module docstring, for ``combinations`` jobs over ``rows``."""
    small_rows = max(1, rows // 10)
    with tempfile.TemporaryDirectory(prefix="bench-matrix-") as tmp_name:
        tmp = Path(tmp_name)
        big = _root(tmp, "big", combinations, rows)
        small = _root(tmp, "small", combinations, small_rows)
        few = _root(tmp, "few", max(2, combinations // 10), rows)
        plain = _root(tmp, "plain", combinations, 0, inputs=True)
        # The same requests, as a hand-written input file would hold them.
        generated = tmp / "generated.jsonl"
        generation = _child(_GENERATE, str(big), str(generated))
        generated.replace(plain / "data" / "requests.jsonl")
        out = {
            "benchmark": "matrix",
            "combinations": combinations,
            "rows": rows,
            "small_rows": small_rows,
            "load_big": _measure(_child(_LOAD, str(big))),
            "load_small": _measure(_child(_LOAD, str(small))),
            "load_few": _measure(_child(_LOAD, str(few))),
            "load_plain": _measure(_child(_LOAD, str(plain))),
            "parse_yaml": _measure(_child(_PARSE, str(big / "jobs" / "eval.yaml"))),
            "generate": {
                "seconds": round(generation["seconds"], 3),
                "requests": generation["requests"],
                "mb": round(generation["bytes"] / (1024 * 1024), 1),
                "requests_per_s": round(generation["requests"] / generation["seconds"]),
                "peak_rss_mb": round(generation["peak_rss_kb"] / 1024, 1),
            },
            "baseline_rss_mb": round(_child(_PEAK + _IMPORT_ONLY)["peak_rss_kb"] / 1024, 1),
        }
    if out["load_big"]["jobs"] != combinations:
        raise RuntimeError(f"expected {combinations} jobs, loaded {out['load_big']['jobs']}")
    return out


_IMPORT_ONLY = """
import json
import reconciler.config.loader, reconciler.config.prompts
print(json.dumps({"peak_rss_kb": peak_kb()}))
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--combinations", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.combinations, args.rows), indent=1))


if __name__ == "__main__":
    main()


def table_rows(
    r: dict[str, Any], *, quick: bool, growth_limit: float, rss_limit: float
) -> list[Row]:
    """The benchmark's lines of the ``python -m benchmarks`` table."""

    def timed(ok: bool) -> bool | None:
        return None if quick else ok

    name = "matrix + prompts"
    big, small, few, plain = r["load_big"], r["load_small"], r["load_few"], r["load_plain"]
    n, rows = r["combinations"], r["rows"]
    out = [
        Row(
            name,
            f"validate {n:,} jobs x {rows:,} rows ({big['requests']:,} requests)",
            seconds(big["seconds"]),
            f"same requests as a JSONL input: {seconds(plain['seconds'])}"
            f" ({big['seconds'] / plain['seconds']:.1f}x); bare YAML parse:"
            f" {seconds(r['parse_yaml']['seconds'])}",
        ),
    ]
    factor = big["seconds"] / small["seconds"]
    out.append(
        Row(
            name,
            f"time, {rows:,} vs {r['small_rows']:,} rows",
            f"{factor:.1f}x",
            f"{seconds(big['seconds'])} vs {seconds(small['seconds'])};"
            f" {few['jobs']:,} jobs over {rows:,} rows: {seconds(few['seconds'])}",
            f"linear (<= {growth_limit:.0f}x for 10x rows)",
            timed(factor <= growth_limit),
        )
    )
    growth = big["peak_rss_mb"] - small["peak_rss_mb"]
    out.append(
        Row(
            name,
            f"peak RSS, {rows:,} vs {r['small_rows']:,} rows",
            f"{growth:+.1f} MB",
            f"{big['peak_rss_mb']:g} MB (import alone: {r['baseline_rss_mb']:g} MB)",
            f"independent of rows (< {rss_limit:g} MB)",
            growth < rss_limit,
        )
    )
    gen = r["generate"]
    out.append(
        Row(
            name,
            f"generate one job's requests ({gen['requests']:,}, {gen['mb']:g} MB)",
            f"{gen['requests_per_s']:,} requests/s",
            f"{seconds(gen['seconds'])}, peak RSS {gen['peak_rss_mb']:g} MB",
        )
    )
    return out
