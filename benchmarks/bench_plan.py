"""Benchmarks: planning at scale against the emulator, and the pure planner's growth.

    .venv/bin/python -m benchmarks.bench_plan                # 10,000 + 10,000 + 10,000
    .venv/bin/python -m benchmarks.bench_plan --jobs 2000

**Scale.** The emulator's database is seeded with ``n`` managed and ``n`` foreign jobs
(:meth:`Emulator.seed_jobs`: the create path's own code and rows, in one transaction), then
served by ``reconciler emulator serve`` in a child process. A plan of ``n`` desired jobs is
made twice over real HTTP, side by side:

- **reconciler**: :func:`read_live_state` (the workspace-filtered listing, oldest first,
  ``page_size`` jobs a page), then :func:`plan`;
- **baseline**, the Terraform way: refresh every resource known from state with its own
  ``GET /v1/batch/jobs/{id}`` (10 at a time, Terraform's default ``-parallelism``), then
  the same :func:`plan`.

Both must give the same plan. API calls are counted by the client and checked against
the emulator's request log, which also shows that planning sent GET requests only.

**Growth.** :func:`plan` alone on 1k, 10k and 100k desired jobs (with as many managed and
as many foreign live jobs, same mix); CPU time, best of a few runs; the factor per 10x.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx

from benchmarks import world
from benchmarks.common import BENCH_TOKEN, served_emulator
from reconciler import api
from reconciler.client import MistralClient
from reconciler.emulator import Emulator
from reconciler.live import LiveJob, read_live_state
from reconciler.plan.model import Plan
from reconciler.plan.planner import Policy, plan

BASELINE_PARALLELISM = 10  # terraform plan -parallelism default
_RUNNING_SPEED = 1e-4  # queued for 10,000 s, then each request takes 200 s
_RUNNING_SINCE = 10_000 + 20  # seconds before now: 20 s into a 200 s run
_DONE_SINCE = 7_200


def seed(db_path: Path, w: world.World) -> float:
    """Write every live job of ``w`` into a fresh emulator database; returns the seconds."""
    started = time.perf_counter()
    with Emulator(db_path) as emulator:
        now = emulator.now()
        # (speed, creation time) per kind, so that the emulator's clock-computed status is
        # the one the world says: done long ago, running for 20 s, or still queued.
        timing = {
            world.Kind.DONE: (1.0, now - _DONE_SINCE),
            world.Kind.RUNNING: (_RUNNING_SPEED, now - _RUNNING_SINCE),
            world.Kind.QUEUED: (_RUNNING_SPEED, now),
        }
        # Seeded oldest first, as they would have been created.
        for kind in (world.Kind.DONE, world.Kind.RUNNING, world.Kind.QUEUED):
            speed, at = timing[kind]
            emulator.set_speed(speed)
            for workspace in (world.WORKSPACE, world.FOREIGN_WORKSPACE):
                bodies = [
                    job.body(i)
                    for i, job in enumerate(w.live)
                    if job.kind is kind and job.workspace == workspace
                ]
                # Each workspace is its own user: foreign jobs are someone else's.
                emulator.seed_jobs(bodies, api_key=f"{BENCH_TOKEN}-{workspace}", at=at)
        emulator.set_speed(1.0)
    return time.perf_counter() - started


def _summary(p: Plan) -> tuple[int, int, int, int]:
    s = p.summary
    return (s.create, s.replace, s.cancel, s.delete)


def _request_log(url: str) -> Counter[str]:
    """Requests the emulator logged since the last clear, by method; then clears it."""
    with httpx.Client(base_url=url, timeout=60) as admin:
        data = admin.get("/_emulator/requests").raise_for_status().json()["data"]
        admin.delete("/_emulator/requests").raise_for_status()
    return Counter(entry["method"] for entry in data)


def run_scale(n: int = 10_000, *, page_size: int = api.PAGE_SIZE) -> dict[str, Any]:
    """Plan ``n`` desired jobs against ``n`` managed + ``n`` foreign live jobs, both ways."""
    w = world.build(n)
    policy = Policy(max_destroy=n)
    with TemporaryDirectory(prefix="bench-plan-") as tmp:
        db_path = Path(tmp) / "emulator.sqlite3"
        seed_seconds = seed(db_path, w)
        with (
            served_emulator(db_path) as url,
            MistralClient(url, BENCH_TOKEN, timeout=60) as client,
        ):
            _request_log(url)  # start from an empty log

            # reconciler: the filtered listing, then the planner.
            started = time.perf_counter()
            state = read_live_state(client, world.WORKSPACE, page_size=page_size)
            read_seconds = time.perf_counter() - started
            desired = w.fresh_desired()
            started = time.perf_counter()
            ours = plan(desired, state.jobs, policy, workspace=world.WORKSPACE)
            plan_seconds = time.perf_counter() - started
            calls = sum(client.attempts.values())
            log = _request_log(url)

            # baseline: one GET per managed job known from state.
            client.reset_stats()
            ids = [job.id for job in state.jobs]

            def refresh(job_id: str) -> LiveJob | None:
                return LiveJob.from_api(client.get_job(job_id), world.WORKSPACE)

            started = time.perf_counter()
            with ThreadPoolExecutor(BASELINE_PARALLELISM) as pool:
                refreshed = [job for job in pool.map(refresh, ids) if job is not None]
            base_read_seconds = time.perf_counter() - started
            started = time.perf_counter()
            theirs = plan(w.fresh_desired(), refreshed, policy, workspace=world.WORKSPACE)
            base_plan_seconds = time.perf_counter() - started
            base_calls = sum(client.attempts.values())
            base_log = _request_log(url)

    if _summary(ours) != w.expected_summary() or _summary(theirs) != _summary(ours):
        raise RuntimeError(
            f"unexpected plan: {_summary(ours)} / baseline {_summary(theirs)},"
            f" expected {w.expected_summary()}"
        )
    return {
        "benchmark": "plan_scale",
        "desired": len(w.desired),
        "managed": len(state.jobs),
        "foreign": len(w.foreign),
        "foreign_returned": state.foreign_seen,
        "page_size": page_size,
        "seed_seconds": round(seed_seconds, 2),
        "list_calls": calls,
        "expected_list_calls": math.ceil(len(w.managed) / page_size),
        "logged": dict(log),
        "read_seconds": round(read_seconds, 4),
        "plan_seconds": round(plan_seconds, 4),
        "seconds": round(read_seconds + plan_seconds, 4),
        "summary": _summary(ours),
        "baseline_calls": base_calls,
        "baseline_logged": dict(base_log),
        "baseline_parallelism": BASELINE_PARALLELISM,
        "baseline_read_seconds": round(base_read_seconds, 4),
        "baseline_plan_seconds": round(base_plan_seconds, 4),
        "baseline_seconds": round(base_read_seconds + base_plan_seconds, 4),
    }


def run_growth(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000), rounds: int = 3
) -> dict[str, Any]:
    """Pure :func:`plan` time at each size: its CPU time (``time.process_time``: the
    planner is single-threaded), the best of several runs (other processes only ever add
    time). The sizes take turns, ``rounds`` times (each round runs a size 100,000 / n
    times, at most 3), so that a busy spell of the machine does not fall on one size
    only. Digests are computed inside, as for specs fresh from the loader."""
    worlds = {n: world.build(n) for n in sizes}
    lives = {n: w.live_jobs() for n, w in worlds.items()}
    timings = dict.fromkeys(sizes, math.inf)
    for _ in range(rounds):
        for n in sizes:
            w = worlds[n]
            for _ in range(max(1, min(3, 100_000 // n))):
                desired = w.fresh_desired()
                started = time.process_time()
                p = plan(desired, lives[n], Policy(max_destroy=n), workspace=world.WORKSPACE)
                timings[n] = min(timings[n], time.process_time() - started)
                if _summary(p) != w.expected_summary():
                    raise RuntimeError(f"unexpected plan at {n}: {_summary(p)}")
    factors = [round(timings[b] / timings[a], 1) for a, b in itertools.pairwise(sizes)]
    return {
        "benchmark": "plan_growth",
        "sizes": list(sizes),
        "seconds": [round(timings[n], 4) for n in sizes],
        "per_job_us": [round(timings[n] / n * 1e6, 1) for n in sizes],
        "factors": factors,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000, help="desired jobs (multiple of 20)")
    args = parser.parse_args(argv)
    print(run_scale(args.jobs))
    print(run_growth())


if __name__ == "__main__":
    main()
