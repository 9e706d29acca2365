"""Terraform users' habits (issue 11, DESIGN.md section 12), through the real command line
against a served emulator: usage errors exit 1, global options after the subcommand, the
wording of the end reports, health in ``status``, provenance tags, and inline request
diffs told request by request."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from e2e.harness import E2E, chat_requests, flat, inline_jobs, jsonl, plan_json
from e2e.test_e2e_terminal import on_terminal

TERMINAL = frozenset({"SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"})
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


def settle(e2e: E2E, workspace: str, timeout: float = 30.0) -> None:
    """Wait until every live job of ``workspace`` is terminal (read through the SDK)."""
    deadline = time.monotonic() + timeout
    while any(job.status not in TERMINAL for job in e2e.live.jobs(workspace)):
        assert time.monotonic() < deadline, e2e.live.jobs(workspace)
        time.sleep(0.1)


# -- usage errors exit 1 ------------------------------------------------------------------


USAGE_ERRORS = {
    "unknown option": ["plan", "--detailed-exitcode", "--bogus"],
    "bad value": ["plan", "--detailed-exitcode", "--format", "yaml"],
    "bad number": ["apply", "--auto-approve", "--parallelism", "0"],
    "missing value": ["apply", "--auto-approve", "--parallelism"],
    "missing argument": ["outputs"],
    "unknown command": ["plna", "--detailed-exitcode"],
    "unknown subcommand": ["emulator", "srve"],
    "extra argument": ["status", "extra"],
    "misused flag": ["apply", "plan.tfplan", "--allow-destroy=1"],
}


@pytest.mark.parametrize("args", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_errors_exit_1_never_2(e2e: E2E, args: list[str]) -> None:
    root = e2e.root("usage", inline_jobs(["a"]))
    (e2e.tmp / "plan.tfplan").write_text("{}")

    result = e2e.cli.run(root, *args)

    # 2 is what plan --detailed-exitcode means by "the plan has changes".
    assert result.code == 1, str(result)
    assert "Error: " in result.stderr and "Traceback" not in result.output, str(result)
    assert e2e.admin.writes() == []


def test_exit_code_2_still_means_changes_and_help_says_usage_errors_are_1(e2e: E2E) -> None:
    root = e2e.root("usage-changes", inline_jobs(["a"]))
    assert e2e.cli.run(root, "plan", "--detailed-exitcode").code == 2
    shown = e2e.cli.ok(root, "--help")
    assert "1 error (usage errors too" in flat(shown.stdout)


# -- global options after the subcommand ----------------------------------------------------


def test_global_options_may_follow_the_subcommand(e2e: E2E) -> None:
    root = e2e.root("globals-after", inline_jobs(["a"]))
    path, url = str(root.path), e2e.url

    after = e2e.cli.run_argv(["plan", "-C", path, "--server", url, "--no-color", "--debug"])
    mixed = e2e.cli.run_argv(["--no-color", "plan", "--chdir", path, "--server", url])
    # The later one wins: -C after the command overrides -C before it.
    overridden = e2e.cli.run_argv(["-C", "/nonexistent", "--server", url, "plan", "-C", path])
    status = e2e.cli.run_argv(["status", "--server", url, "-C", path, "--format", "json"])
    validate = e2e.cli.run_argv(["validate", "-C", path])
    before = e2e.cli.run(root, "plan")

    for result in (after, mixed, overridden, status, validate, before):
        assert result.code == 0, str(result)
    for result in (after, mixed, overridden, before):
        assert "Plan: 1 to create, 0 to replace, 0 to cancel, 0 to delete." in result.stdout
    assert "[debug] --> GET " in after.stderr  # --debug after the command works too
    assert json.loads(status.stdout)["workspace"] == root.workspace
    assert "Configuration is valid: 1 job" in validate.stdout
    helped = e2e.cli.run_argv(["plan", "--help"])
    assert "Global options (also accepted before the command):" in helped.stdout
    assert "-C, --chdir DIRECTORY" in helped.stdout


def test_shell_completion_offers_global_options_after_the_subcommand(e2e: E2E) -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_RECONCILER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - 1),
        }
        result = e2e.cli.run_argv([], env=env)
        return [line.split(",", 1)[1] for line in result.stdout.splitlines()]

    assert complete("reconciler plan --ch") == ["--chdir"]
    assert complete("reconciler status --no-c") == ["--no-color"]
    assert complete("reconciler --ser") == ["--server"]


# -- wording --------------------------------------------------------------------------------


def test_end_reports_count_like_the_plan_line(e2e: E2E) -> None:
    root = e2e.root("wording", {"one": {"requests": chat_requests(2, bad={1})}})
    e2e.admin.speed(100)

    applied = e2e.cli.ok(root, "apply", "--auto-approve", "--wait")
    settle(e2e, root.workspace)
    results = e2e.cli.ok(root, "outputs", "one", "-o", str(e2e.tmp / "one.jsonl"))
    destroyed = e2e.cli.ok(root, "destroy", "--auto-approve")

    assert "Plan: 1 to create, 0 to replace, 0 to cancel, 0 to delete." in applied.stdout
    assert "Apply complete: 1 created, 0 replaced, 0 cancelled, 0 deleted." in applied.stdout
    assert re.search(r"^one: 1 result, 1 error \[id=", results.stderr, re.M), results.stderr
    assert destroyed.stdout.rstrip().splitlines()[-1] == (
        "Destroy complete: 0 created, 0 replaced, 0 cancelled, 1 deleted."
    )


def test_validate_errors_are_coloured_on_a_terminal_only(e2e: E2E) -> None:
    broken = e2e.root("wording-colour", {"bad": {"model": 7, "requests": []}})
    command = e2e.cli.command(broken, "validate", server=False)
    colour_env = {k: v for k, v in e2e.cli.env.items() if k != "NO_COLOR"}

    code, coloured = on_terminal(command, colour_env)
    _, no_color_env = on_terminal(command, e2e.cli.env)  # NO_COLOR=1
    _, flagged = on_terminal([*command, "--no-color"], colour_env)
    piped = e2e.cli.run(broken, "validate", server=False, env={"NO_COLOR": ""})

    assert code == 1, coloured
    # The place bold, the message red; without the colour, exactly the plain line.
    place = r"\x1b\[1m[^\x1b]*jobs\.yaml:\d+:\d+:\x1b\[0m"
    assert re.search(place + r" jobs\.bad\.model: \x1b\[31mmust be a string", coloured), coloured
    plain = re.sub(r"\x1b\[[0-9;]*m", "", coloured)
    for shown in (plain, no_color_env, flagged, piped.stderr):
        assert re.search(r"jobs\.yaml:\d+:\d+: jobs\.bad\.model: must be a string", shown), shown
    for shown in (no_color_env, flagged, piped.stderr):
        assert "\x1b[" not in shown


# -- health -----------------------------------------------------------------------------------


def test_status_says_degraded_with_the_reason_not_in_sync(e2e: E2E) -> None:
    root = e2e.root("health", {"outside": {"requests": chat_requests(2)}})
    e2e.cli.ok(root, "apply", "--auto-approve")  # slow: QUEUED for a while
    e2e.admin.speed(100)
    (outside,) = e2e.live.jobs(root.workspace)
    e2e.live.sdk.batch.jobs.cancel(job_id=outside.id)  # by someone, outside the reconciler
    root.jobs |= {
        "fine": {"requests": chat_requests(2)},
        "partial": {"requests": chat_requests(3, bad={1})},
        "broken": {"requests": chat_requests(2, bad={0, 1})},
        "retried": {"requests": chat_requests(1, bad={0}), "max_attempts": 3},
    }
    root.write()
    e2e.cli.ok(root, "apply", "--auto-approve")
    settle(e2e, root.workspace)

    text = e2e.cli.ok(root, "status")
    document = json.loads(e2e.cli.ok(root, "status", "--format", "json").stdout)
    plan = e2e.cli.run(root, "plan")

    rows = {line.split()[0]: line for line in text.stdout.splitlines()[1:]}
    assert "in sync" in rows["fine"] and " healthy " in rows["fine"]
    assert "degraded (1 of 3 requests failed)" in rows["partial"]
    assert "degraded (FAILED; out of attempts (1 of 1))" in rows["broken"]
    assert (
        "degraded (cancelled outside the reconciler; out of attempts (1 of 1))" in (rows["outside"])
    )
    assert "retry pending" in rows["retried"]
    assert "degraded (FAILED; retry pending (attempt 1 of 3))" in rows["retried"]
    health = {job["name"]: job["health"] for job in document["jobs"]}
    assert health["fine"] == {"status": "healthy", "reason": None}
    assert health["partial"] == {"status": "degraded", "reason": "1 of 3 requests failed"}
    assert health["outside"]["status"] == "degraded"
    # The plan still warns about what will not be retried.
    assert "Warning: broken will not be retried" in plan.stdout
    assert "Warning: outside will not be retried" in plan.stdout


# -- provenance -------------------------------------------------------------------------------


def git(root: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "e2e",
        "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
        "GIT_COMMITTER_NAME": "e2e",
        "GIT_COMMITTER_EMAIL": "e2e@example.invalid",
        "HOME": str(root),
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    done = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_every_created_job_names_its_commit_and_plan(e2e: E2E) -> None:
    root = e2e.root("provenance", inline_jobs(["a"]))
    git(root.path, "init", "-q", ".")
    (root.path / ".gitignore").write_text("*.tfplan\n")
    git(root.path, "add", "-A")
    git(root.path, "commit", "-q", "-m", "jobs")
    head = git(root.path, "rev-parse", "HEAD")

    saved = e2e.cli.ok(root, "plan", "--out", str(root.path / "a.tfplan"))
    plan_id = json.loads(
        e2e.cli.ok(root, "show", str(root.path / "a.tfplan"), "--format", "json").stdout
    )["plan_id"]
    e2e.cli.ok(root, "apply", str(root.path / "a.tfplan"))
    root.jobs["b"] = {"requests": chat_requests(1)}  # not committed: the tree is dirty
    root.write()
    e2e.cli.ok(root, "apply", "--auto-approve")
    wide = e2e.cli.ok(root, "status", "--wide")
    document = json.loads(e2e.cli.ok(root, "status", "--format", "json").stdout)

    assert UUID.fullmatch(plan_id) and f"(plan {plan_id})" in saved.stderr
    jobs = {job.name: job for job in e2e.live.jobs(root.workspace)}
    assert jobs["a"].metadata["reconciler.commit"] == head
    assert jobs["a"].metadata["reconciler.plan"] == plan_id  # the reviewed plan's id
    assert jobs["b"].metadata["reconciler.commit"] == f"{head}-dirty"
    assert UUID.fullmatch(jobs["b"].metadata["reconciler.plan"])
    assert jobs["b"].metadata["reconciler.plan"] != plan_id
    current = {job["name"]: job["current"] for job in document["jobs"]}
    assert (current["a"]["commit"], current["a"]["plan_id"]) == (head, plan_id)
    assert current["b"]["commit"] == f"{head}-dirty"
    header, *rows = wide.stdout.splitlines()
    assert header.split()[-2:] == ["COMMIT", "PLAN"]
    row_a = next(r for r in rows if r.startswith("a "))
    assert row_a.split()[-2:] == [head[:12], plan_id[:8]]
    assert next(r for r in rows if r.startswith("b ")).split()[-2] == f"{head[:12]}-dirty"


def test_outside_a_git_work_tree_there_is_no_commit_tag(e2e: E2E, tmp_path: Path) -> None:
    root = e2e.root("provenance-nogit", inline_jobs(["a"]))
    e2e.cli.ok(root, "apply", "--auto-approve", env={"GIT_CEILING_DIRECTORIES": str(tmp_path)})
    (job,) = e2e.live.jobs(root.workspace)
    assert "reconciler.commit" not in job.metadata
    assert UUID.fullmatch(job.metadata["reconciler.plan"])


# -- inline request diffs ---------------------------------------------------------------------


def test_inline_request_changes_are_shown_request_by_request(e2e: E2E) -> None:
    root = e2e.root("request-diff", {"qa": {"requests": chat_requests(4)}})
    e2e.cli.ok(root, "apply", "--auto-approve")
    requests = root.jobs["qa"]["requests"]
    requests[1]["body"]["messages"][0]["content"] = "edited"
    requests[3]["body"]["max_tokens"] = 99
    del requests[2]
    requests.append({"custom_id": "new", "body": {"messages": [{"role": "user", "content": "x"}]}})
    root.write()
    e2e.admin.clear_log()

    text = e2e.cli.run(root, "plan", "--detailed-exitcode")
    markdown = e2e.cli.run(root, "plan", "--format", "markdown")
    document = plan_json(e2e.cli.run(root, "plan", "--format", "json"))

    assert text.code == 2, str(text)
    lines = [line.strip() for line in text.stdout.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("~ requests ="))
    assert lines[start + 1 : start + 6] == [
        '~ request "1": body.messages changed',
        '- request "2"',
        '~ request "3": body.max_tokens changed',
        '+ request "new"',
        "# (1 request unchanged)",
    ]
    # In the PR comment's diff fence the markers move to column 0 ("!" for a change).
    for marker, text_after in (("!", 'request "1": body.messages changed'), ("-", 'request "2"')):
        assert re.search(rf"^{re.escape(marker)}\s+{re.escape(text_after)}$", markdown.stdout, re.M)
    assert re.search(r'^\+\s+request "new"$', markdown.stdout, re.M), markdown.stdout
    (diff,) = document["changes"][0]["diffs"]
    assert diff["requests"] == {
        "detail": "fields",
        "added": 1,
        "removed": 1,
        "changed": 2,
        "unchanged": 1,
        "unknown": 0,
        "changes": [
            {"custom_id": "1", "change": "changed", "fields": ["body.messages"]},
            {"custom_id": "2", "change": "removed", "fields": []},
            {"custom_id": "3", "change": "changed", "fields": ["body.max_tokens"]},
            {"custom_id": "new", "change": "added", "fields": []},
        ],
    }
    assert {entry.method for entry in e2e.admin.log()} == {"GET"}  # still read-only


def test_many_request_changes_show_the_first_few_then_counts(e2e: E2E) -> None:
    root = e2e.root("request-diff-many", {"big": {"requests": chat_requests(20)}})
    e2e.cli.ok(root, "apply", "--auto-approve")
    root.jobs["big"]["requests"] = chat_requests(30, text="other")  # 20 edited, 10 new
    root.write()

    text = e2e.cli.run(root, "plan")

    listed = [line.strip() for line in text.stdout.splitlines() if 'request "' in line]
    assert len(listed) == 5, text.stdout
    assert "# ... and 25 more (10 added, 15 changed)" in text.stdout


def test_a_changed_input_file_shows_the_lines_it_gained_and_lost(e2e: E2E) -> None:
    root = e2e.root("input-lines", {})
    root.jobs = {"eval": {"inputs": [root.input_file("data.jsonl", chat_requests(10))]}}
    root.write()
    e2e.cli.ok(root, "apply", "--auto-approve")
    lines = chat_requests(13)
    lines[2]["body"]["max_tokens"] = 99  # one line edited: one removed, one added
    del lines[5]  # one removed; three appended (10, 11, 12)
    (root.path / "data" / "data.jsonl").write_text(jsonl(lines))
    e2e.admin.clear_log()

    text = e2e.cli.run(root, "plan")
    document = plan_json(e2e.cli.run(root, "plan", "--format", "json"))

    assert re.search(
        r'\+ "data/data\.jsonl@[0-9a-f]{12}", # 4 lines added, 2 removed$', text.stdout, re.M
    ), text.stdout
    assert document["changes"][0]["diffs"][0]["lines"] == {"added": 4, "removed": 2}
    log = e2e.admin.log()
    assert {entry.method for entry in log} == {"GET"}  # the old file is read, nothing written
    assert any(e.path.startswith("/v1/files/") and e.path.endswith("/content") for e in log)
