"""The benchmarks at toy sizes (``python -m benchmarks --quick``), so their code cannot rot.

Structure and sanity only — call counts, plans, duplicates, the table — never timings:
those are judged by the full run (benchmarks/README.md), not by a test that could flake.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from benchmarks import __main__ as bench
from benchmarks import world
from benchmarks.common import table


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return bench.run_all(bench.QUICK)


def test_planning_costs_one_list_call_per_page_not_one_call_per_job(
    results: dict[str, Any],
) -> None:
    r = results["plan_scale"]
    assert (r["desired"], r["managed"], r["foreign"]) == (bench.QUICK.plan_jobs,) * 3
    assert r["list_calls"] == math.ceil(r["managed"] / r["page_size"]) + 0
    assert r["logged"] == {"GET": r["list_calls"]}  # planning never writes
    assert r["foreign_returned"] == 0
    assert r["baseline_calls"] == r["managed"]
    assert r["baseline_logged"] == {"GET": r["managed"]}
    assert tuple(r["summary"]) == world.build(r["desired"]).expected_summary()


def test_planner_growth_reports_a_factor_per_size_step(results: dict[str, Any]) -> None:
    r = results["plan_growth"]
    assert r["sizes"] == list(bench.QUICK.growth)
    assert len(r["seconds"]) == len(r["sizes"]) and all(s > 0 for s in r["seconds"])
    assert len(r["factors"]) == len(r["sizes"]) - 1


def test_applies_create_every_job_exactly_once(results: dict[str, Any]) -> None:
    r = results["apply_throughput"]
    assert [run["parallelism"] for run in r["runs"]] == list(bench.QUICK.parallelisms)
    for run in r["runs"]:
        assert (run["failed"], run["duplicates"], run["missing"]) == (0, 0, 0)
        assert run["live_jobs"] == run["creates"] == bench.QUICK.creates
        assert run["requests"] == run["creates"]  # no latency-induced retry
    (limited,) = results["apply_rate_limit"]
    run = limited["run"]
    assert (run["failed"], run["duplicates"], run["missing"]) == (0, 0, 0)
    assert run["requests"] == run["creates"] + run["retried"]
    assert limited["floor_seconds"] == (bench.QUICK.creates - bench.QUICK.limit) / bench.QUICK.limit


def test_inputs_are_checked_at_both_sizes(results: dict[str, Any]) -> None:
    small, large = results["inputs"]
    assert 0 < small["lines"] < large["lines"]
    assert small["peak_rss_mb"] > 0 and large["peak_rss_mb"] > 0


def test_cost_estimates_every_request_beside_the_validation_pass(results: dict[str, Any]) -> None:
    small, large = results["cost"]
    assert 0 < small["requests"] < large["requests"]
    for r in (small, large):
        assert r["validate"]["ratio"] == 1.0
        assert r["heuristic"]["method"] == "heuristic" and r["heuristic"]["input_tokens"] > 0
        if r["exact"] is not None:  # mistral-common installed (the test extra has it)
            assert r["exact"]["method"] == "exact"
            assert r["exact"]["counter"] == "tekken_240718.json"
    assert "cost estimate" in table(bench.rows(results, quick=True))


def test_the_request_stream_is_sharded_built_and_merged(results: dict[str, Any]) -> None:
    small, large = results["requests"]
    for r in (small, large):
        assert r["validate"]["requests"] == r["requests"]
        assert r["validate"]["shards"] == r["requests"] // bench.QUICK.max_requests
        assert r["build"]["files"] == r["validate"]["shards"]
        assert r["merge"]["written"] == r["requests"]  # one line per custom_id
        assert r["merge"]["failed"] == r["requests"] // 300 + (1 if r["requests"] % 300 else 0)


def test_the_table_has_every_benchmark_and_no_missed_target(results: dict[str, Any]) -> None:
    rows = bench.rows(results, quick=True)
    assert not [r for r in rows if r.met is False]
    text = table(rows)
    names = ("plan at scale", "planner growth", "apply throughput", "rate limit", "inputs")
    for name in (*names, "request stream", "matrix + prompts"):
        assert name in text
    # Timings are not judged at toy sizes.
    assert all(r.met is None for r in rows if "speed-up" in r.measure or "growth" in r.measure)


def test_the_command_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--quick", "--only", "plan_growth"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("reconciler benchmarks, quick")
    assert "planner growth" in out and "targets met, 0 missed." in out


def test_the_matrix_benchmark_validates_every_expanded_job(results: dict[str, Any]) -> None:
    r = results["matrix"]
    combinations, rows = bench.QUICK.matrix
    assert r["load_big"]["jobs"] == r["load_plain"]["jobs"] == combinations
    assert r["load_big"]["requests"] == r["load_plain"]["requests"] == combinations * rows
    assert r["load_small"]["requests"] == combinations * r["small_rows"]
    assert r["generate"]["requests"] == rows
