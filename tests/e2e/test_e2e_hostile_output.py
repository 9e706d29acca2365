"""Hostile live data through the real command line (DESIGN.md section 11): jobs whose names,
metadata keys and values carry terminal escape sequences, line breaks and markdown meant to
break out of the PR comment, created by "someone in the organisation" with the official SDK
and tagged with our workspace.

No control character reaches the terminal raw in plan, status, destroy, wait, outputs or
error messages; the markdown comment cannot close its tags, start a comment or a link, or
mention anyone; the JSON views still carry the exact strings.
"""

from __future__ import annotations

import json
import re

import pytest

from e2e.harness import E2E, NAME_TAG, WORKSPACE_TAG, Result, chat_requests, inline_jobs

ESCAPES = "\x1b[31mred\x1b]0;owned-title\x07\x1b]8;;http://evil.example\x07link\x1b]8;;\x07"
HOSTILE_NAMES = [
    f"esc{ESCAPES}\x9b2J",
    "</summary>\n\n@team LGTM",
    "cr\rline\u2028sep\u202eflip",
    "</details><!-- [x](https://evil.example) ![i](http://evil.example/i.png) |",
]
HOSTILE_METADATA = {"note\x1b[5m": "v\x1b[2J\nInjected: line", "team": "@team\x9b31m"}


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


def plant(e2e: E2E, workspace: str) -> None:
    """Jobs someone else created in our workspace, with hostile names and metadata; and a
    version of our own job ``good`` with hostile metadata (so the plan diffs it)."""
    for name in [*HOSTILE_NAMES, "good"]:
        tags = {WORKSPACE_TAG: workspace, NAME_TAG: name}
        if name == "good":  # claims another spec: the plan replaces it, diffing metadata
            tags["reconciler.spec"] = "0" * 64
        e2e.live.sdk.batch.jobs.create(
            endpoint="/v1/chat/completions",
            model="mistral-small-latest",
            requests=chat_requests(1),
            metadata={**tags, **HOSTILE_METADATA},
        )


def raw_controls(text: str) -> list[str]:
    """Characters that are not printable, other than the line breaks we print."""
    return sorted({repr(c) for c in text if not c.isprintable() and c != "\n"})


def assert_terminal_safe(result: Result) -> None:
    assert raw_controls(result.stdout) == [], str(result)
    assert raw_controls(result.stderr) == [], str(result)


def test_plan_status_wait_outputs_and_destroy_escape_what_the_api_says(e2e: E2E) -> None:
    root = e2e.root("hostile-term", inline_jobs(["good"]), max_destroy=20)
    plant(e2e, root.workspace)

    plan = e2e.cli.run(root, "plan", "--detailed-exitcode")
    assert plan.code == 2, str(plan)
    assert_terminal_safe(plan)
    # Escaped, not dropped: the reader still sees what the names hold.
    assert 'job "esc\\x1b[31mred\\x1b]0;owned-title\\x07' in plan.stdout
    assert 'job "</summary>\\n\\n@team LGTM" {' in plan.stdout
    assert "\\x9b2J" in plan.stdout and "\\u202eflip" in plan.stdout
    assert (
        '~ metadata      = {"note\\u001b[5m": "v\\u001b[2J\\nInjected: line", '
        '"team": "@team\\x9b31m"} -> {}'
    ) in plan.stdout

    status = e2e.cli.run(root, "status")
    assert status.code == 0, str(status)
    assert_terminal_safe(status)
    assert "</summary>\\n\\n@team LGTM" in status.stdout

    for name in HOSTILE_NAMES[:2]:
        waited = e2e.cli.run(root, "wait", name, "--timeout", "0.5", "--poll", "0.1")
        assert waited.code == 1, str(waited)
        assert_terminal_safe(waited)
        assert "Timed out: 1 of 1 jobs still running" in waited.stdout
        early = e2e.cli.run(root, "outputs", name)
        assert early.code == 1
        assert_terminal_safe(early)
        assert "results are available once it has finished" in early.stderr
    missing = e2e.cli.run(root, "outputs", "nope\x1b[2J")
    assert missing.code == 1
    assert_terminal_safe(missing)
    assert "Error: no live job named nope\\x1b[2J in workspace" in missing.stderr

    e2e.admin.speed(100)  # cancellations complete quickly: destroy then deletes
    destroyed = e2e.cli.run(root, "destroy", "--auto-approve", "--allow-destroy=5")
    assert destroyed.code == 0, str(destroyed)
    assert_terminal_safe(destroyed)
    assert "</summary>\\n\\n@team LGTM: " in destroyed.stdout


def test_the_json_views_carry_the_exact_strings_and_no_raw_control(e2e: E2E) -> None:
    root = e2e.root("hostile-json", inline_jobs(["good"]), max_destroy=20)
    e2e.cli.ok(root, "apply", "--auto-approve")
    plant(e2e, root.workspace)

    plan = e2e.cli.run(root, "plan", "--format", "json")
    assert plan.code == 0, str(plan)
    assert_terminal_safe(plan)
    names = {c["name"] for c in json.loads(plan.stdout)["changes"]}
    assert set(HOSTILE_NAMES) <= names

    status = e2e.cli.run(root, "status", "--format", "json")
    assert_terminal_safe(status)
    assert set(HOSTILE_NAMES) <= {j["name"] for j in json.loads(status.stdout)["jobs"]}


def test_the_markdown_comment_cannot_be_broken_out_of(e2e: E2E) -> None:
    root = e2e.root("hostile-md", inline_jobs(["good"]), max_destroy=20)
    e2e.cli.ok(root, "apply", "--auto-approve")
    plant(e2e, root.workspace)

    shown = e2e.cli.run(root, "plan", "--format", "markdown", "--marker")
    assert shown.code == 0, str(shown)
    comment = shown.stdout
    assert raw_controls(comment) == []
    lines = comment.splitlines()
    assert lines[0] == f"<!-- reconciler-plan: {root.workspace} -->"
    # Split the comment: markdown/HTML outside the diff fences, code inside them.
    outside: list[str] = []
    fences: list[str] = []
    fence: str | None = None
    for line in lines[1:]:
        if fence is None and line.startswith("```"):
            fence = line[: len(line) - len(line.lstrip("`"))]
            fences.append(fence)
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            outside.append(line)
    assert fence is None and fences  # every fence closed, by its own line only
    prose = "\n".join(outside)
    # Every tag the view opened is closed, and there is no other tag and no comment.
    tags = re.findall(r"<[^>]*>|<!--|-->", prose)
    ours = {"<details>", "</details>", "<summary>", "</summary>", "<code>", "</code>"}
    assert set(tags) <= ours | {"<sub>", "</sub>"}  # <sub> holds the plan's id
    assert tags.count("<details>") == tags.count("</details>") == tags.count("<summary>")
    assert tags.count("<summary>") == tags.count("</summary>") >= len(HOSTILE_NAMES)
    for line in outside:
        if "<summary>" in line:
            assert line.startswith("<details><summary>") and line.endswith("</summary>"), line
    # No mention, link, image or autolink from the data; no line of it stands alone.
    assert "@team" not in prose.replace("&#64;&#8203;team", "")
    assert "](" not in prose.replace("&#93;(", "") and "![" not in prose
    assert "://" not in prose and "<!--" not in prose
    assert not any(line.lstrip("> ").startswith(("@", "LGTM")) for line in outside)
    assert "LGTM" in prose  # shown, harmlessly, inside its summary
    # A '|' from the data never splits a table cell: only the table's own rows have one.
    assert [line for line in outside if "|" in line] == [
        line for line in outside if line.startswith("| ")
    ]


def test_a_hostile_name_on_the_command_line_is_echoed_escaped(e2e: E2E) -> None:
    root = e2e.root("hostile-err", inline_jobs(["good"]))
    waited = e2e.cli.run(root, "wait", "ghost\x1b]0;t\x07", "--timeout", "1")
    assert waited.code == 1
    assert_terminal_safe(waited)
    assert "no live job named ghost\\x1b]0;t\\x07 to follow" in waited.stderr
