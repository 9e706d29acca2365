"""Run every benchmark and print one table: ``.venv/bin/python -m benchmarks [--quick]``.

The full run (about seven minutes) measures the targets of DESIGN.md's quality bars at
their stated sizes; ``--quick`` runs the same code at toy sizes in seconds (a smoke test
keeps it from rotting) and judges only what does not depend on timing.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_apply,
    bench_cost,
    bench_inputs,
    bench_matrix,
    bench_plan,
    bench_requests,
)
from benchmarks.common import Row, machine, seconds, table

NAMES = (
    "plan_scale",
    "plan_growth",
    "apply_throughput",
    "apply_rate_limit",
    "inputs",
    "requests",
    "cost",
    "matrix",
)
GROWTH_LIMIT = 13.0  # near-linear: at most 13x the time for 10x the jobs
SPEEDUP_TARGET = 12.0
RATE_LIMIT_TARGET = 1.25
RSS_GROWTH_LIMIT_MB = 16.0  # "independent of file size": within noise from 64 MB to 512 MB
INPUTS_RATIO_TARGET = 4.0  # validate + sha256 within 4x sha256 alone (issue 12)


@dataclass(frozen=True)
class Sizes:
    plan_jobs: int
    growth: tuple[int, ...]
    creates: int
    latency: float
    parallelisms: tuple[int, int]
    limit: float
    low_limit: tuple[float, int] | None  # (requests per second, creates): below parallelism
    inputs_mb: tuple[int, int]
    requests: tuple[int, int]  # the request-stream job, small and large
    max_requests: int  # its limits.max_requests_per_job
    repeats: int  # runs at the high parallelism (median)
    matrix: tuple[int, int] = (1_000, 100_000)  # combinations, rows of the rows file


FULL = Sizes(
    plan_jobs=10_000,
    growth=(1_000, 10_000, 100_000),
    creates=1_000,
    latency=0.05,
    parallelisms=(1, 16),
    limit=50.0,
    low_limit=(10.0, 200),
    inputs_mb=(64, 512),
    requests=(100_000, 1_000_000),
    max_requests=50_000,
    repeats=3,
)
QUICK = Sizes(
    plan_jobs=260,
    growth=(100, 1_000),
    creates=40,
    latency=0.02,
    parallelisms=(1, 8),
    limit=20.0,
    low_limit=None,
    inputs_mb=(2, 8),
    requests=(2_000, 20_000),
    max_requests=1_000,
    repeats=1,
    matrix=(20, 2_000),
)


def run_all(sizes: Sizes, only: tuple[str, ...] = NAMES) -> dict[str, Any]:
    """Run the selected benchmarks at ``sizes``; their raw results by name."""
    jobs: dict[str, Callable[[], Any]] = {
        "plan_scale": lambda: bench_plan.run_scale(sizes.plan_jobs),
        "plan_growth": lambda: bench_plan.run_growth(sizes.growth),
        "apply_throughput": lambda: bench_apply.run_throughput(
            sizes.creates, sizes.latency, sizes.parallelisms, sizes.repeats
        ),
        "apply_rate_limit": lambda: [
            bench_apply.run_rate_limit(sizes.creates, sizes.latency, sizes.limit),
            *(
                [bench_apply.run_rate_limit(sizes.low_limit[1], sizes.latency, sizes.low_limit[0])]
                if sizes.low_limit
                else []
            ),
        ],
        "inputs": lambda: [bench_inputs.run(mb) for mb in sizes.inputs_mb],
        "requests": lambda: [bench_requests.run(n, sizes.max_requests) for n in sizes.requests],
        # The same sizes as the inputs benchmark: estimation beside validation.
        "cost": lambda: [bench_cost.run(mb) for mb in sizes.inputs_mb],
        "matrix": lambda: bench_matrix.run(*sizes.matrix),
    }
    # The memory-hungry ones last, so that no benchmark runs in the heap another left.
    order = (
        "apply_throughput",
        "apply_rate_limit",
        "inputs",
        "requests",
        "cost",
        "matrix",
        "plan_scale",
        "plan_growth",
    )
    done = {name: jobs[name]() for name in order if name in only}
    return {name: done[name] for name in NAMES if name in done}


def _n(value: float) -> str:
    return f"{value:,.0f}"


def rows(results: dict[str, Any], *, quick: bool) -> list[Row]:
    """The table: each measure beside what it is compared with, and its target."""

    def timed(ok: bool) -> bool | None:
        return None if quick else ok  # toy sizes say nothing about speed

    out: list[Row] = []
    if "plan_scale" in results:
        r = results["plan_scale"]
        name = "plan at scale"
        head = f"{_n(r['desired'])} desired, {_n(r['managed'])} managed"
        head += f" + {_n(r['foreign'])} foreign"
        out.append(Row(name, head, "", "baseline: one GET per job (Terraform's refresh)"))
        extra = r["list_calls"] - r["expected_list_calls"]
        out.append(
            Row(
                name,
                "API calls",
                f"{_n(r['list_calls'])} list",
                f"{_n(r['baseline_calls'])} GET: {r['baseline_calls'] / r['list_calls']:.0f}x more",
                f"⌈{_n(r['managed'])}/{r['page_size']}⌉ + const"
                f" ({r['expected_list_calls']} + {extra})",
                0 <= extra <= 1,
            )
        )
        writes = sum(v for k, v in r["logged"].items() if k != "GET")
        out.append(
            Row(
                name,
                "requests in the emulator's log",
                f"{r['logged'].get('GET', 0):,} GET, {writes} other",
                f"{r['baseline_logged'].get('GET', 0):,} GET",
                "planning only GETs",
                writes == 0 and r["logged"].get("GET") == r["list_calls"],
            )
        )
        out.append(
            Row(
                name,
                "foreign jobs returned by the server",
                str(r["foreign_returned"]),
                "",
                "0 (filtered server-side)",
                r["foreign_returned"] == 0,
            )
        )
        out.append(
            Row(
                name,
                "wall time: read live state + plan()",
                f"{seconds(r['seconds'])} ({seconds(r['read_seconds'])} + "
                f"{seconds(r['plan_seconds'])})",
                f"{seconds(r['baseline_seconds'])} "
                f"({seconds(r['baseline_read_seconds'])} + {seconds(r['baseline_plan_seconds'])},"
                f" {r['baseline_parallelism']} at a time): "
                f"{r['baseline_seconds'] / r['seconds']:.1f}x slower",
            )
        )
        out.append(
            Row(name, "seeding (Emulator.seed_jobs, not timed above)", seconds(r["seed_seconds"]))
        )
    if "plan_growth" in results:
        r = results["plan_growth"]
        name = "planner growth"
        for n, secs, us in zip(r["sizes"], r["seconds"], r["per_job_us"], strict=True):
            out.append(
                Row(
                    name,
                    f"plan() of {_n(n)} desired (+ as many managed, foreign)",
                    seconds(secs),
                    f"{us:.0f} µs per job",
                )
            )
        factors = ", ".join(f"{f}x" for f in r["factors"])
        out.append(
            Row(
                name,
                "growth per 10x jobs",
                factors,
                "",
                f"near-linear (<= {GROWTH_LIMIT:.0f}x)",
                timed(all(f <= GROWTH_LIMIT for f in r["factors"])),
            )
        )
    if "apply_throughput" in results:
        r = results["apply_throughput"]
        low, high = r["runs"]
        name = "apply throughput"
        out.append(
            Row(
                name,
                f"{_n(r['creates'])} creates, {r['latency'] * 1000:.0f} ms latency, over HTTP",
                f"--parallelism {high['parallelism']}: {seconds(high['seconds'])}"
                + (
                    f" (median of {', '.join(seconds(x) for x in r['high_seconds_all'])})"
                    if len(r["high_seconds_all"]) > 1
                    else ""
                ),
                f"--parallelism {low['parallelism']}: {seconds(low['seconds'])}",
            )
        )
        out.append(
            Row(
                name,
                "speed-up",
                f"{r['speedup']}x",
                "",
                f">= {SPEEDUP_TARGET:.0f}x",
                timed(r["speedup"] >= SPEEDUP_TARGET),
            )
        )
        every = [low, *r["high_runs"]]
        dup = sum(run["duplicates"] + run["missing"] + run["failed"] for run in every)
        out.append(
            Row(
                name,
                f"jobs per name afterwards ({len(every)} runs)",
                "1 each" if dup == 0 else f"{dup} duplicated, missing or failed",
                " / ".join(_n(run["live_jobs"]) for run in every) + " live jobs",
                "no duplicate, none missing",
                dup == 0 and all(run["live_jobs"] == r["creates"] for run in every),
            )
        )
    if "apply_rate_limit" in results:
        for r in results["apply_rate_limit"]:
            run = r["run"]
            name = "rate limit"
            out.append(
                Row(
                    name,
                    f"{_n(r['creates'])} creates at --parallelism {r['parallelism']},"
                    f" server limit {r['limit']:g} req/s",
                    seconds(run["seconds"]),
                    f"requests/N = {seconds(r['requests_over_limit'])};"
                    f" floor with its 1 s burst: {seconds(r['floor_seconds'])}",
                )
            )
            out.append(
                Row(
                    name,
                    "time / floor the limit allows",
                    f"{r['ratio']}x" if r["ratio"] is not None else "n/a",
                    f"{run['retried']} requests refused (429) and retried",
                    f"<= {RATE_LIMIT_TARGET}x",
                    timed(r["ratio"] is not None and r["ratio"] <= RATE_LIMIT_TARGET),
                )
            )
            out.append(
                Row(
                    name,
                    "failures, duplicates, missing",
                    f"{run['failed']}, {run['duplicates']}, {run['missing']}",
                    "",
                    "0, 0, 0",
                    run["failed"] == run["duplicates"] == run["missing"] == 0,
                )
            )
    if "inputs" in results:
        small, large = results["inputs"]
        name = "inputs"
        for r in (large, small):
            out.append(
                Row(
                    name,
                    f"validate + sha256 {r['size_mb']:g} MB JSONL ({_n(r['lines'])} lines)",
                    f"{r['mb_per_s']:g} MB/s",
                    f"{seconds(r['seconds'])}, peak RSS {r['peak_rss_mb']:g} MB",
                )
            )
        out.append(
            Row(
                name,
                f"time / sha256 alone, {large['size_mb']:g} MB",
                f"{large['ratio']}x",
                f"sha256 alone: {large['sha_mb_per_s']:g} MB/s",
                f"<= {INPUTS_RATIO_TARGET:g}x (>= 1/4 of sha256's speed)",
                timed(large["ratio"] <= INPUTS_RATIO_TARGET),
            )
        )
        growth = large["peak_rss_mb"] - small["peak_rss_mb"]
        out.append(
            Row(
                name,
                f"peak RSS, {large['size_mb']:g} MB vs {small['size_mb']:g} MB file",
                f"{growth:+.1f} MB",
                f"(import alone: {small['baseline_rss_mb']:g} MB)",
                f"independent of size (< {RSS_GROWTH_LIMIT_MB:g} MB)",
                growth < RSS_GROWTH_LIMIT_MB,
            )
        )
    if "requests" in results:
        small, large = results["requests"]
        name = "request stream"
        for r in (large, small):
            v, b, m = r["validate"], r["build"], r["merge"]
            out.append(
                Row(
                    name,
                    f"{_n(r['requests'])} requests ({v['bytes'] / 2**20:,.0f} MB),"
                    f" max_requests_per_job {_n(r['max_requests'])}",
                    f"{v['shards']} shards",
                    f"peak RSS {r['peak_rss_mb']:g} MB",
                )
            )
            for step, what in (
                (v, "validate + hash + shard"),
                (b, "build shard files"),
                (m, "merge outputs (shards + retries)"),
            ):
                out.append(
                    Row(
                        name,
                        f"  {what}",
                        seconds(step["seconds"]),
                        f"{step['ratio']}x sha256 of the same bytes"
                        f" ({seconds(step['sha_seconds'])})",
                    )
                )
        growth = large["peak_rss_mb"] - small["peak_rss_mb"]
        out.append(
            Row(
                name,
                f"peak RSS, {_n(large['requests'])} vs {_n(small['requests'])} requests",
                f"{growth:+.1f} MB",
                "",
                f"independent of size (< {RSS_GROWTH_LIMIT_MB:g} MB)",
                growth < RSS_GROWTH_LIMIT_MB,
            )
        )
        ok = all(
            r["merge"]["written"] == r["requests"] and r["validate"]["requests"] == r["requests"]
            for r in (small, large)
        )
        out.append(
            Row(
                name,
                "merged lines = requests, one per custom_id",
                "yes" if ok else "no",
                "",
                "every request once",
                ok,
            )
        )
    if "cost" in results:
        out.extend(_cost_rows(results["cost"]))
    if "matrix" in results:
        out += bench_matrix.table_rows(
            results["matrix"], quick=quick, growth_limit=GROWTH_LIMIT, rss_limit=RSS_GROWTH_LIMIT_MB
        )
    return out


def _cost_rows(results: list[dict[str, Any]]) -> list[Row]:
    """Estimation beside validation of the same file, and memory across sizes."""
    small, large = results
    name = "cost estimate"
    out = []
    for r in (large, small):
        base = r["validate"]
        out.append(
            Row(
                name,
                f"validate {r['size_mb']:g} MB JSONL ({_n(r['requests'])} requests)",
                f"{_n(base['requests_per_s'])} req/s, {base['mb_per_s']:g} MB/s",
                f"{seconds(base['seconds'])}, peak RSS {base['peak_rss_mb']:g} MB (baseline)",
            )
        )
        for mode in ("heuristic", "exact"):
            m = r[mode]
            if m is None:
                out.append(Row(name, f"estimate, {mode}", "n/a: mistral-common not installed"))
                continue
            loaded = f", tokenizer load {seconds(m['load_seconds'])}" if mode == "exact" else ""
            out.append(
                Row(
                    name,
                    f"estimate {r['size_mb']:g} MB, {mode}"
                    + (f" ({m['counter']})" if mode == "exact" else ""),
                    f"{_n(m['requests_per_s'])} req/s, {m['mb_per_s']:g} MB/s",
                    f"{m['ratio']:g}x validate; {seconds(m['seconds'])},"
                    f" peak RSS {m['peak_rss_mb']:g} MB{loaded}",
                )
            )
    for mode in ("heuristic", "exact"):
        if small[mode] is None or large[mode] is None:
            continue
        growth = large[mode]["peak_rss_mb"] - small[mode]["peak_rss_mb"]
        out.append(
            Row(
                name,
                f"peak RSS, {mode}, {large['size_mb']:g} MB vs {small['size_mb']:g} MB file",
                f"{growth:+.1f} MB",
                "",
                f"independent of size (< {RSS_GROWTH_LIMIT_MB:g} MB)",
                growth < RSS_GROWTH_LIMIT_MB,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="toy sizes: a smoke run in seconds")
    parser.add_argument(
        "--only", action="append", choices=NAMES, help="run only this benchmark (repeatable)"
    )
    parser.add_argument("--json", type=Path, help="also write the raw results to this file")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    info = machine()
    started = time.perf_counter()
    results = run_all(sizes, tuple(args.only or NAMES))
    elapsed = time.perf_counter() - started
    lines = rows(results, quick=args.quick)
    mode = "quick (toy sizes: timings are not judged)" if args.quick else "full"
    print(
        f"reconciler benchmarks, {mode}: {info['nproc']} CPUs ({info['cpu']}),"
        f" Python {info['python']}, {info['date']}, {math.ceil(elapsed)} s,"
        f" load average {info['load']} before -> {machine()['load']} after"
    )
    print()
    print(table(lines))
    missed = [r for r in lines if r.met is False]
    print()
    print(f"{sum(r.met is True for r in lines)} targets met, {len(missed)} missed.")
    if args.json is not None:
        payload = {"machine": info, "mode": "quick" if args.quick else "full", "results": results}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
