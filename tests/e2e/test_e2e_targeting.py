"""``--target`` / ``--exclude`` / ``--replace`` on plan, apply and destroy, through the real
command line: a targeted plan plans, saves, applies and guards only its jobs; a target
matching nothing is an error naming it; ``--replace`` re-runs a job whose version is fine."""

from __future__ import annotations

import json
import time

import pytest

from e2e.harness import E2E, Root, chat_requests, flat, inline_jobs, plan_json, planned

NEW_MODEL = "mistral-medium-latest"
TERMINAL = frozenset({"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"})


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


def edited_world(e2e: E2E, name: str) -> tuple[Root, list[str]]:
    """Five jobs applied; then eval-a and eval-b change model, extra is removed."""
    names = ["eval-a", "eval-b", "eval-c", "other", "extra"]
    root = e2e.root(name, inline_jobs(names), max_destroy=10)
    e2e.cli.ok(root, "apply", "--auto-approve")
    for job in ("eval-a", "eval-b", "other"):
        root.jobs[job]["model"] = NEW_MODEL
    del root.jobs["extra"]
    root.write()
    return root, names


def test_a_targeted_plan_plans_only_its_jobs_and_says_so(e2e: E2E) -> None:
    root, _ = edited_world(e2e, "target-plan")
    e2e.admin.clear_log()

    text = e2e.cli.run(root, "plan", "--target", "eval-*", "--exclude", "eval-c")
    document = plan_json(e2e.cli.run(root, "plan", "--target", "eval-*", "--format", "json"))
    markdown = e2e.cli.run(root, "plan", "--target", "eval-a", "--format", "markdown")
    removed = plan_json(e2e.cli.run(root, "plan", "--target", "extra", "--format", "json"))
    excluded = plan_json(e2e.cli.run(root, "plan", "--exclude", "eval-?", "--format", "json"))

    assert text.code == 0, str(text)
    assert text.stdout.startswith(
        "Targeted: 2 of 5 jobs (--target 'eval-*', --exclude eval-c); the others are not planned."
    )
    assert "Plan: 0 to create, 2 to replace, 0 to cancel, 0 to delete." in text.stdout
    assert planned(document, "replace") == ["eval-a", "eval-b"]
    assert document["summary"]["total"] == 2
    assert document["targeting"]["text"].startswith("Targeted: 3 of 5 jobs (--target 'eval-*')")
    assert (document["targeting"]["selected"], document["targeting"]["total"]) == (3, 5)
    assert "Targeted: 1 of 5 jobs (--target eval-a)" in markdown.stdout
    # A job removed from the configuration can be targeted by its name.
    assert [(c["action"], c["name"]) for c in removed["changes"]] == [("cancel", "extra")]
    assert [(c["action"], c["name"]) for c in excluded["changes"]] == [
        ("cancel", "extra"),
        ("replace", "other"),
    ]
    assert {entry.method for entry in e2e.admin.log()} == {"GET"}


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--target", "evl-a"], "--target 'evl-a' matches no job (did you mean eval-a?)"),
        (["--target", "eval-*", "--exclude", "nope*"], "--exclude 'nope*' matches no job"),
        (["--replace", "ghost"], "--replace 'ghost' matches no job"),
        (["--replace", "extra"], "--replace 'extra': extra is not in the configuration"),
        (["--target", "other", "--replace", "eval-a"], "eval-a is not selected by --target"),
    ],
)
def test_a_selection_that_matches_nothing_is_an_error_naming_it(
    e2e: E2E, flags: list[str], message: str
) -> None:
    root, _ = edited_world(e2e, f"target-typo-{abs(hash(tuple(flags))) % 10**6}")
    e2e.admin.clear_log()
    for command in (["plan"], ["apply", "--auto-approve"]):
        result = e2e.cli.run(root, *command, *flags)
        assert result.code == 1, str(result)
        assert message in flat(result.stderr), str(result)
    assert e2e.admin.writes() == []


def test_a_targeted_saved_plan_applies_only_its_targets(e2e: E2E) -> None:
    root, names = edited_world(e2e, "target-saved")
    path = e2e.tmp / "eval-a.tfplan"
    e2e.cli.ok(root, "plan", "--target", "eval-a", "--out", str(path))
    e2e.admin.speed(100)

    refused = e2e.cli.run(root, "apply", str(path), "--target", "eval-b")
    applied = e2e.cli.ok(root, "apply", str(path))
    left = plan_json(e2e.cli.run(root, "plan", "--format", "json"))

    assert refused.code == 1 and "--target is saved in the plan file" in refused.stderr
    assert applied.stdout.startswith("Targeted: 1 of 5 jobs (--target eval-a)")
    assert "Apply complete: 0 created, 1 replaced, 0 cancelled, 0 deleted." in applied.stdout
    models = {
        name: [j.model for j in jobs] for name, jobs in e2e.live.by_name(root.workspace).items()
    }
    assert models["eval-a"] == ["mistral-small-latest", NEW_MODEL]
    assert all(len(models[n]) == 1 for n in names if n != "eval-a")
    assert planned(left, "replace") == ["eval-b", "other"]
    assert planned(left, "cancel") == ["extra"]


def test_guards_count_only_what_the_targeted_plan_does(e2e: E2E) -> None:
    root = e2e.root("target-guard", inline_jobs(["a", "b", "c", "d"]), max_destroy=1)
    e2e.cli.ok(root, "apply", "--auto-approve")
    root.jobs = {"d": root.jobs["d"]}
    root.write()
    e2e.admin.clear_log()

    whole = e2e.cli.run(root, "apply", "--auto-approve")
    assert whole.code == 3 and "more than safety.max_destroy (1)" in flat(whole.stdout)
    assert e2e.admin.writes() == []

    two = e2e.cli.run(root, "plan", "--target", "a", "--target", "b")
    assert two.code == 3 and "would cancel or delete 2 live jobs" in flat(two.stdout)
    one = e2e.cli.ok(root, "apply", "--auto-approve", "--target", "a")
    assert "Apply complete: 0 created, 0 replaced, 1 cancelled, 0 deleted." in one.stdout
    active = e2e.live.active_per_name(root.workspace)
    assert active == {"b": 1, "c": 1, "d": 1}


def test_destroy_can_be_targeted(e2e: E2E) -> None:
    root = e2e.root("target-destroy", inline_jobs(["keep", "scratch-1", "scratch-2"]))
    e2e.cli.ok(root, "apply", "--auto-approve")
    e2e.admin.speed(100)

    done = e2e.cli.ok(root, "destroy", "--auto-approve", "--target", "scratch-*")
    nothing = e2e.cli.ok(root, "destroy", "--auto-approve", "--target", "scratch-*")

    assert done.stdout.startswith("Targeted: 2 of 3 jobs (--target 'scratch-*')")
    assert "Destroy complete: 0 created, 0 replaced, 2 cancelled, 0 deleted." in done.stdout
    assert e2e.live.per_name(root.workspace) == {"keep": 1}
    assert "nothing to destroy" in nothing.stdout
    assert e2e.cli.run(root, "destroy", "--replace", "keep").code == 1  # no such flag here


def wait_terminal(e2e: E2E, workspace: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while any(j.status not in TERMINAL for j in e2e.live.jobs(workspace)):
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_replace_re_runs_a_running_job_and_counts_it_as_a_replace(e2e: E2E) -> None:
    root = e2e.root("replace-running", inline_jobs(["a", "b"]), max_destroy=0)
    e2e.cli.ok(root, "apply", "--auto-approve")  # slow: both QUEUED
    (old,) = e2e.live.by_name(root.workspace)["a"]
    e2e.admin.clear_log()

    blocked = e2e.cli.run(root, "plan", "--replace", "a")
    assert blocked.code == 3, str(blocked)
    assert "# a will be replaced, as requested" in blocked.stdout
    assert "Plan: 0 to create, 1 to replace, 0 to cancel, 0 to delete." in blocked.stdout
    assert "re-run with --allow-destroy=1" in flat(blocked.stdout)
    assert e2e.admin.writes() == []

    e2e.admin.speed(100)
    e2e.cli.ok(root, "apply", "--auto-approve", "--replace", "a", "--allow-destroy=1")
    versions = e2e.live.by_name(root.workspace)["a"]
    assert len(versions) == 2 and versions[0].id == old.id
    assert versions[0].status in ("CANCELLATION_REQUESTED", "CANCELLED")
    new = versions[1]
    assert new.metadata["reconciler.attempt"] == "1"
    assert new.metadata["reconciler.rerun-of"] == old.id
    assert new.metadata["reconciler.spec"] == old.metadata["reconciler.spec"]
    # The re-run is the current version now, not a duplicate to cancel.
    again = e2e.cli.run(root, "plan", "--detailed-exitcode")
    assert again.code == 0, str(again)
    assert len(e2e.live.by_name(root.workspace)["b"]) == 1


def test_replace_re_runs_a_finished_job_with_a_fresh_attempt_count(e2e: E2E) -> None:
    root = e2e.root(
        "replace-finished", {"flaky": {"requests": chat_requests(2, bad={0, 1}), "max_attempts": 2}}
    )
    e2e.admin.speed(100)
    e2e.cli.ok(root, "apply", "--auto-approve")
    wait_terminal(e2e, root.workspace)
    e2e.cli.ok(root, "apply", "--auto-approve")  # the retry: attempt 2 of 2
    wait_terminal(e2e, root.workspace)
    exhausted = e2e.cli.run(root, "plan", "--detailed-exitcode")
    assert exhausted.code == 0 and "Warning: flaky will not be retried" in exhausted.stdout

    document = plan_json(e2e.cli.run(root, "plan", "--replace", "flaky", "--format", "json"))
    (change,) = document["changes"]
    assert (change["action"], change["reason"], change["attempt"]) == ("create", "requested", 1)
    assert change["description"] == "flaky will be replaced, as requested"
    assert document["targeting"]["replaced"] == ["flaky"]
    text = e2e.cli.ok(root, "apply", "--auto-approve", "--replace", "flaky")
    assert "# flaky will be replaced, as requested" in text.stdout
    versions = e2e.live.by_name(root.workspace)["flaky"]
    assert [j.metadata["reconciler.attempt"] for j in versions] == ["1", "2", "1"]
    wait_terminal(e2e, root.workspace)
    # It failed again: a retry (attempt 2 of 2) of the re-run, as for any version.
    retry = plan_json(e2e.cli.run(root, "plan", "--format", "json"))
    assert [(c["reason"], c["attempt"]) for c in retry["changes"]] == [("retry", 2)]
    assert (
        json.loads(e2e.cli.ok(root, "status", "--format", "json").stdout)["jobs"][0]["versions"]
        == 3
    )
