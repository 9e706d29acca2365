"""Each command as a user runs it, against one served emulator shared by the module: planning
only reads, apply asks (or refuses without a terminal), guards block with exit 3, results
come back merged, ``wait`` reports failures, inputs are uploaded once, exit codes."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from e2e.harness import E2E, chat_requests, flat, inline_jobs, plan_json, planned


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


# -- planning only reads --------------------------------------------------------------------


def test_plan_only_ever_sends_get_requests(e2e: E2E, tmp_path: Path) -> None:
    root = e2e.root("readonly", inline_jobs(["kept", "edited", "removed"]))
    e2e.cli.ok(root, "apply", "--auto-approve")
    root.jobs["edited"]["model"] = "mistral-medium-latest"
    del root.jobs["removed"]
    root.jobs["added"] = {"inputs": [root.input_file("new.jsonl", chat_requests(3))]}
    root.write()
    e2e.admin.clear_log()

    text = e2e.cli.run(root, "--debug", "plan", "--detailed-exitcode")
    document = plan_json(e2e.cli.run(root, "plan", "--format", "json"))
    e2e.cli.run(root, "plan", "--format", "markdown", "--out", str(tmp_path / "p.tfplan"))
    e2e.cli.run(root, "plan", "--destroy", "--allow-destroy=3")

    assert text.code == 2, str(text)
    # --debug logs every request; the key is redacted (Cli.run checks no output holds it).
    assert "[debug] --> GET " in text.stderr
    assert "    authorization: Bearer ***\n" in text.stderr
    assert (planned(document, "create"), planned(document, "replace")) == (["added"], ["edited"])
    assert planned(document, "cancel") == ["removed"]
    log = e2e.admin.log()
    assert len(log) >= 4
    assert {entry.method for entry in log} == {"GET"}


# -- confirmation ---------------------------------------------------------------------------


def test_apply_without_a_terminal_refuses_unless_auto_approved(e2e: E2E) -> None:
    root = e2e.root("no-tty", inline_jobs(["a"]))
    for stdin in ("", "yes\n"):  # piped input is not a terminal, even when it says yes
        refused = e2e.cli.run(root, "apply", stdin=stdin)
        assert refused.code == 1, str(refused)
        assert "Plan: 1 to create" in refused.stdout
        assert (
            "Error: refusing to perform these actions without confirmation: no terminal to "
            "ask on. Pass --auto-approve, or apply a reviewed plan file"
        ) in refused.stderr
    e2e.cli.ok(root, "apply", "--auto-approve")
    e2e.admin.clear_log()
    refused = e2e.cli.run(root, "destroy")
    assert refused.code == 1, str(refused)
    assert "refusing to destroy every managed job without confirmation" in refused.stderr
    assert e2e.admin.writes() == []
    assert e2e.live.per_name(root.workspace) == {"a": 1}


# -- guards ---------------------------------------------------------------------------------


def test_max_destroy_blocks_until_allow_destroy_names_the_exact_count(e2e: E2E) -> None:
    root = e2e.root("max-destroy", inline_jobs(["a", "b", "c", "d"]), max_destroy=2)
    e2e.cli.ok(root, "apply", "--auto-approve")
    root.jobs = {"a": root.jobs["a"]}
    root.write()
    e2e.admin.clear_log()

    runs = [
        ["plan"],
        ["apply", "--auto-approve"],
        ["apply", "--auto-approve", "--allow-destroy=2"],
        ["plan", "--allow-destroy=4"],
    ]
    for command in runs:
        blocked = e2e.cli.run(root, *command)
        assert blocked.code == 3, str(blocked)
        assert "more than safety.max_destroy (2)" in flat(blocked.stdout)
        assert "re-run with --allow-destroy=3" in flat(blocked.stdout)
        assert (
            "Error: the plan is blocked by 1 safety guard (see above); nothing was changed"
        ) in blocked.stderr
    assert e2e.admin.writes() == []

    e2e.admin.speed(100)
    assert e2e.cli.run(root, "plan", "--allow-destroy=3", "--detailed-exitcode").code == 2
    done = e2e.cli.ok(root, "apply", "--auto-approve", "--allow-destroy=3")
    assert "Apply complete: 0 created, 0 replaced, 3 cancelled, 0 deleted." in done.stdout
    assert e2e.live.per_name(root.workspace) == {"a": 1}


def test_prevent_destroy_blocks_replace_and_destroy_whatever_allow_destroy_says(
    e2e: E2E,
) -> None:
    root = e2e.root("protected", inline_jobs(["keep"], prevent_destroy=True) | inline_jobs(["x"]))
    e2e.cli.ok(root, "apply", "--auto-approve")
    root.jobs["keep"]["model"] = "mistral-medium-latest"  # a replace cancels running work
    root.write()
    e2e.admin.clear_log()

    replace = e2e.cli.run(root, "apply", "--auto-approve", "--allow-destroy=1")
    destroy = e2e.cli.run(root, "destroy", "--auto-approve", "--allow-destroy=2")

    for blocked in (replace, destroy):
        assert blocked.code == 3, str(blocked)
        assert "keep has prevent_destroy set, but this plan would" in flat(blocked.stdout)
        assert "cannot be overridden by --allow-destroy" in flat(blocked.stdout)
    assert e2e.admin.writes() == []
    # Dropping the flag is how a protected job is let go.
    del root.jobs["keep"]["prevent_destroy"]
    root.write()
    assert e2e.cli.run(root, "plan", "--detailed-exitcode").code == 2


def test_an_empty_configuration_cannot_remove_every_job_by_accident(e2e: E2E) -> None:
    root = e2e.root("emptied", inline_jobs(["a", "b"]))
    e2e.cli.ok(root, "apply", "--auto-approve")
    root.jobs = {}
    root.write()
    e2e.admin.clear_log()

    blocked = e2e.cli.run(root, "apply", "--auto-approve")
    assert blocked.code == 3, str(blocked)
    assert "The configuration declares no jobs" in flat(blocked.stdout)
    assert "re-run with --allow-destroy=2 (or use `reconciler destroy`)" in flat(blocked.stdout)
    assert e2e.cli.run(root, "apply", "--auto-approve", "--allow-destroy=1").code == 3
    assert e2e.admin.writes() == []

    e2e.admin.speed(100)
    e2e.cli.ok(root, "apply", "--auto-approve", "--allow-destroy=2")
    assert e2e.live.jobs(root.workspace) == []


# -- failures, results, waiting -------------------------------------------------------------


def test_one_failed_action_fails_the_apply_and_leaves_the_rest_done(e2e: E2E) -> None:
    missing = str(uuid.uuid4())
    root = e2e.root("one-fails", inline_jobs(["a", "c"]) | {"b": {"input_files": [missing]}})

    failed = e2e.cli.run(root, "apply", "--auto-approve")

    assert failed.code == 1, str(failed)
    assert (
        "Error: Apply failed: 1 of 3 actions failed "
        "(done: 2 created, 0 replaced, 0 cancelled, 0 deleted)."
    ) in failed.stderr
    assert "  - b (create): POST /v1/batch/jobs (HTTP 422): the API rejected the request" in (
        failed.stderr
    )
    assert e2e.live.per_name(root.workspace) == {"a": 1, "c": 1}
    again = plan_json(e2e.cli.run(root, "plan", "--format", "json"))
    assert [(c["action"], c["name"]) for c in again["changes"]] == [("create", "b")]


def test_outputs_merges_results_and_errors_in_custom_id_order(e2e: E2E, tmp_path: Path) -> None:
    bad = {3, 7, 10}
    root = e2e.root("outputs", {"mixed": {"requests": chat_requests(12, bad=bad)}})
    e2e.admin.speed(100)
    applied = e2e.cli.ok(root, "apply", "--auto-approve", "--wait")
    assert "1 job finished: 1 succeeded." in applied.stdout
    (job,) = e2e.live.jobs(root.workspace)
    assert job.status == "SUCCESS"
    assert job.output_file is not None and job.error_file is not None  # both files exist

    shown = e2e.cli.ok(root, "outputs", "mixed")
    saved = e2e.cli.ok(root, "outputs", "mixed", "-o", str(tmp_path / "mixed.jsonl"))

    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [line["custom_id"] for line in lines] == [str(i) for i in range(12)]
    # Mistral's error-file lines carry the request's failure as a non-200 response.
    failed = [i for i, line in enumerate(lines) if line["response"]["status_code"] != 200]
    assert failed == sorted(bad)
    assert (tmp_path / "mixed.jsonl").read_text() == shown.stdout
    assert saved.stdout == ""
    assert f"mixed: 9 results, 3 errors [id={job.id}]" in saved.stderr


def test_wait_exits_0_when_jobs_succeed_and_1_when_one_failed_or_timed_out(e2e: E2E) -> None:
    root = e2e.root("waiting", inline_jobs(["slow"]))
    e2e.cli.ok(root, "apply", "--auto-approve")  # at the slow speed: QUEUED for ~100 s
    root.jobs["good"] = {"requests": chat_requests(3)}
    root.jobs["broken"] = {"requests": chat_requests(2, bad={0, 1})}  # every request malformed
    root.write()
    e2e.admin.speed(100)

    failed = e2e.cli.run(root, "apply", "--auto-approve")
    assert failed.code == 0, str(failed)
    good = e2e.cli.run(root, "wait", "good", "--poll", "0.1")
    bad = e2e.cli.run(root, "wait", "good", "broken", "--poll", "0.1")
    slow = e2e.cli.run(root, "wait", "slow", "--timeout", "0.5", "--poll", "0.1")

    assert good.code == 0, str(good)
    assert "1 job finished: 1 succeeded." in good.stdout
    assert bad.code == 1, str(bad)
    assert "2 jobs finished: 1 succeeded, 1 did not." in bad.stdout
    assert "  - broken: FAILED [id=" in bad.stdout
    assert slow.code == 1, str(slow)
    assert "Timed out: 1 of 1 jobs still running (slow)." in slow.stdout


def test_apply_wait_exits_1_when_a_job_fails(e2e: E2E) -> None:
    root = e2e.root("apply-wait", {"broken": {"requests": chat_requests(2, bad={0, 1})}})
    e2e.admin.speed(100)
    result = e2e.cli.run(root, "apply", "--auto-approve", "--wait")
    assert result.code == 1, str(result)
    assert "Apply complete: 1 created, 0 replaced, 0 cancelled, 0 deleted." in result.stdout
    assert "1 job finished: 0 succeeded, 1 did not." in result.stdout
    assert "Error: some jobs did not succeed (see above)" in result.stderr


# -- uploads --------------------------------------------------------------------------------


def test_the_same_input_bytes_are_uploaded_once_across_roots_and_runs(e2e: E2E) -> None:
    requests = chat_requests(5, text="shared")
    one = e2e.root("upload-one", {})
    one.jobs = {"eval": {"inputs": [one.input_file("data.jsonl", requests)]}}
    one.write()
    two = e2e.root("upload-two", {})
    two.jobs = {
        "copy": {"inputs": [two.input_file("renamed.jsonl", requests)]},
        "inline": {"requests": chat_requests(1)},
    }
    two.write()

    e2e.cli.ok(one, "apply", "--auto-approve")
    e2e.cli.ok(two, "apply", "--auto-approve")
    two.jobs["inline"]["model"] = "mistral-medium-latest"
    two.jobs["second"] = {"inputs": ["../data/renamed.jsonl"]}
    two.write()
    e2e.admin.speed(100)
    e2e.cli.ok(two, "apply", "--auto-approve")

    assert e2e.admin.count("POST", "/v1/files") == 1
    (eval_job,) = e2e.live.by_name(one.workspace)["eval"]
    file_ids = {
        e2e.live.sdk.batch.jobs.get(job_id=job.id).input_files[0]
        for job in [eval_job, *e2e.live.jobs(two.workspace)]
        if job.name in ("eval", "copy", "second")
    }
    assert len(file_ids) == 1


# -- exit codes (DESIGN.md section 4) not covered above --------------------------------------


def test_exit_codes_of_every_command(e2e: E2E) -> None:
    root = e2e.root("codes", inline_jobs(["a"]))
    cli = e2e.cli
    broken = e2e.root("codes-broken", {"bad": {"model": 7, "requests": []}})
    nowhere = ["--server", f"{e2e.url}/not-an-api"]  # answers 404 to everything

    assert cli.run(root, "validate").code == 0
    invalid = cli.run(broken, "validate")
    assert invalid.code == 1 and "jobs.yaml:" in invalid.stderr
    for command in (["plan"], ["apply", "--auto-approve"], ["status"], ["destroy"]):
        assert cli.run(broken, *command).code == 1, command
    assert cli.run(root, "plan").code == 0  # changes, but no --detailed-exitcode
    assert cli.run(root, "status").code == 0  # nothing created yet is not an error
    api_failure = cli.run(root, *nowhere, "plan", server=False)
    assert api_failure.code == 1 and "Error: GET /v1/batch/jobs (HTTP 404)" in api_failure.stderr
    assert cli.run(root, *nowhere, "status", server=False).code == 1
    cli.ok(root, "apply", "--auto-approve")
    unfinished = cli.run(root, "outputs", "a")
    assert unfinished.code == 1 and "results are available once it has finished" in (
        unfinished.stderr
    )
    unknown = cli.run(root, "outputs", "nope")
    assert unknown.code == 1 and "no live job named nope" in unknown.stderr
    assert cli.run(root, "wait", "nope", "--timeout", "1").code == 1
    assert cli.run(root, "apply", "--auto-approve").code == 0  # no changes
    e2e.admin.speed(100)
    assert cli.run(root, "destroy", "--auto-approve", "--allow-destroy=0").code == 0
