"""Saved plans: ``plan --out`` then ``apply PLANFILE`` applies exactly the reviewed plan, at
most once. When live state moved in a way that changes what the plan would do (a job
created or cancelled by someone else), it exits 4 and writes nothing (request log: no
POST, no DELETE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e.harness import E2E, NAME_TAG, WORKSPACE_TAG, Root, chat_requests, inline_jobs


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


def saved_plan(e2e: E2E, name: str) -> tuple[Root, Path]:
    """A root with live jobs a and b, edited so that the plan replaces a and creates c."""
    root = e2e.root(name, inline_jobs(["a", "b"]))
    e2e.cli.ok(root, "apply", "--auto-approve")
    root.jobs["a"]["model"] = "mistral-medium-latest"
    root.jobs["c"] = {"requests": chat_requests(1)}
    root.write()
    out = e2e.tmp / f"{name}.tfplan"
    saved = e2e.cli.run(root, "plan", "--out", str(out), "--detailed-exitcode")
    assert saved.code == 2, str(saved)
    assert "Plan: 1 to create, 1 to replace, 0 to cancel, 0 to delete." in saved.stdout
    assert f"Saved the plan to {out} (plan " in saved.stderr
    return root, out


def test_a_job_cancelled_by_someone_else_makes_the_plan_stale(e2e: E2E) -> None:
    root, out = saved_plan(e2e, "cancelled")
    ws = root.workspace
    old_a = e2e.live.by_name(ws)["a"][0]
    e2e.live.sdk.batch.jobs.cancel(job_id=old_a.id)  # someone else, in the console
    before = sorted(j.id for j in e2e.live.jobs(ws))
    e2e.admin.clear_log()

    refused = e2e.cli.run(root, "apply", str(out))

    assert refused.code == 4, str(refused)
    assert "Error: Saved plan is stale" in refused.stderr
    assert f"a: the plan would replace job {old_a.id}, now it would create" in refused.stderr
    assert e2e.admin.writes() == []
    assert sorted(j.id for j in e2e.live.jobs(ws)) == before


def test_a_job_created_by_someone_else_makes_the_plan_stale(e2e: E2E) -> None:
    root, out = saved_plan(e2e, "created")
    ws = root.workspace
    # Another process of the same workspace made a job the configuration does not know.
    e2e.live.sdk.batch.jobs.create(
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=chat_requests(1),
        metadata={WORKSPACE_TAG: ws, NAME_TAG: "intruder"},
    )
    e2e.admin.clear_log()

    refused = e2e.cli.run(root, "apply", str(out))

    assert refused.code == 4, str(refused)
    assert "intruder: the plan would do nothing, now it would cancel job" in refused.stderr
    assert e2e.admin.writes() == []
    assert sorted(e2e.live.per_name(ws)) == ["a", "b", "intruder"]


def test_a_saved_plan_applies_once_then_is_stale(e2e: E2E) -> None:
    root, out = saved_plan(e2e, "twice")
    ws = root.workspace
    # Jobs of another workspace are not ours: they never make a plan stale.
    e2e.live.sdk.batch.jobs.create(
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        requests=chat_requests(1),
        metadata={WORKSPACE_TAG: "someone-else", NAME_TAG: "c"},
    )
    e2e.admin.speed(100)

    first = e2e.cli.run(root, "apply", str(out), stdin="")
    assert first.code == 0, str(first)  # no prompt: the plan was reviewed when saved
    assert "Apply complete: 1 created, 1 replaced, 0 cancelled, 0 deleted." in first.stdout
    assert e2e.live.per_name(ws) == {"a": 2, "b": 1, "c": 1}

    e2e.admin.clear_log()
    second = e2e.cli.run(root, "apply", str(out))
    assert second.code == 4, str(second)
    assert "Saved plan is stale" in second.stderr
    assert e2e.admin.writes() == []
    assert e2e.live.per_name(ws) == {"a": 2, "b": 1, "c": 1}


def test_a_saved_plan_is_not_applied_to_another_server(e2e: E2E) -> None:
    root, out = saved_plan(e2e, "elsewhere")
    e2e.admin.clear_log()
    moved = e2e.cli.run(
        root,
        "--server",
        "http://127.0.0.1:9",
        "apply",
        str(out),
        server=False,
    )
    assert moved.code == 4, str(moved)
    assert f"the plan was made against {e2e.url}, not http://127.0.0.1:9" in moved.stderr
    assert e2e.admin.log() == []
