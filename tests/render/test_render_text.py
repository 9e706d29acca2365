"""The text view, line for line (Terraform's conventions), with and without colour."""

from __future__ import annotations

import dataclasses
import re

from render_fixtures import WS, blocked_plan, realistic_plan, ref

from reconciler.api import Status
from reconciler.plan.model import Action, Change, FieldDiff, Plan, Reason
from reconciler.render import text

ANSI = re.compile(r"\x1b\[[0-9;]*m")

REALISTIC = """\
Job actions are indicated with the following symbols:
  + create
-/+ replace (cancel, then create)
  x cancel
  - delete

Reconciler will perform the following actions in workspace research-evals:

  # cheese-eval must be replaced: model, metadata, inputs changed
-/+ job "cheese-eval" {
      ~ id       = "job-0001" -> (known after apply)
        status   = "RUNNING" (40/100)
      ~ model    = "mistral-small-latest" -> "mistral-medium-latest"
      ~ metadata = {
          ~ "dataset" = "cheese-v1" -> "cheese-v2"
        }
      ~ inputs   = [
          - "data/cheese.jsonl@111111111111",
          + "data/cheese.jsonl@222222222222",
        ]
    }

  # nightly will be retried: attempt 2 of 3 (job job-0004 ended FAILED)
  + job "nightly" {
        previous = "job-0004" (FAILED)
      + attempt  = 2
      + id       = (known after apply)
    }

  # old-job will be cancelled, then deleted (removed from configuration)
  x job "old-job" {
        id     = "job-0003"
        status = "RUNNING" (10/50)
    }

  # old-job will be deleted (removed from configuration)
  - job "old-job" {
        id     = "job-0002"
        status = "SUCCESS" (50/50)
    }

  # wine-quick will be created
  + job "wine-quick" {
      + endpoint      = "/v1/chat/completions"
      + model         = "mistral-small-latest"
      + requests      = (1 inline request)
      + metadata      = {
          + "team" = "research"
        }
      + timeout_hours = 24
      + attempt       = 1
      + id            = (known after apply)
    }

Plan: 2 to create, 1 to replace, 1 to cancel, 1 to delete.

Waiting for running jobs to finish (on_change: wait):

  # summary will be replaced once job job-0005 ends (on_change: wait): model, metadata changed
    job "summary" {
        id       = "job-0005"
        status   = "RUNNING" (3/10)
      ~ model    = "mistral-small-latest" -> "mistral-large-latest"
      ~ metadata = {
          + "owner" = "ana"
        }
    }

Warning: flaky will not be retried

  Job job-0007 ended FAILED on attempt 2 and max_attempts is 2: it will not be retried. Change the
  job's spec, or raise max_attempts, to run it again.
"""

BLOCKED = """\
Job actions are indicated with the following symbols:
  x cancel
  - delete

Reconciler will perform the following actions in workspace research-evals:

  # ocr-archive will be cancelled, then deleted (removed from configuration)
  x job "ocr-archive" {
        id     = "job-0010"
        status = "QUEUED"
    }

  # old-job will be deleted once its cancellation completes (removed from configuration)
  - job "old-job" {
        id     = "job-0011"
        status = "CANCELLATION_REQUESTED"
    }

Plan: 0 to create, 0 to replace, 1 to cancel, 1 to delete.

Error: Job cannot be cancelled or deleted

  ocr-archive has prevent_destroy set, but this plan would cancel job job-0010. prevent_destroy
  cannot be overridden by --allow-destroy: remove it from the job's configuration first, if the job
  really should go.

Error: Plan would remove every managed job

  The configuration declares no jobs, so this plan would cancel or delete every managed job of
  workspace research-evals (2 live jobs). If that is intended, re-run with --allow-destroy=2 (or use
  `reconciler destroy`).
"""


def test_realistic_plan() -> None:
    assert text.render(realistic_plan(), color=False) == REALISTIC


def test_blocked_plan_shows_errors_with_what_to_do() -> None:
    assert text.render(blocked_plan(), color=False) == BLOCKED


def test_no_changes() -> None:
    assert text.render(Plan(workspace=WS), color=False) == (
        "No changes. Live jobs match the configuration.\n"
    )


def test_no_changes_still_shows_warnings() -> None:
    notes_only = dataclasses.replace(realistic_plan(), changes=())
    out = text.render(notes_only, color=False)
    assert out.startswith("No changes. Live jobs match the configuration.\n\nWaiting for")
    assert "Warning: flaky will not be retried" in out
    assert "symbols" not in out


def test_colour_only_when_asked() -> None:
    plain = text.render(realistic_plan(), color=False)
    assert "\x1b" not in plain
    coloured = text.render(realistic_plan(), color=True)
    assert ANSI.sub("", coloured) == plain
    lines = coloured.splitlines()
    assert "  \x1b[32m+\x1b[0m create" in lines  # green +
    assert "\x1b[31m-\x1b[0m/\x1b[32m+\x1b[0m replace (cancel, then create)" in lines
    assert '  \x1b[33mx\x1b[0m job "old-job" {' in lines  # yellow x
    assert '  \x1b[31m-\x1b[0m job "old-job" {' in lines  # red -
    assert "      \x1b[33m~\x1b[0m model    = " in "\n".join(lines)  # yellow ~
    assert "\x1b[1m\x1b[31mError: \x1b[0m" in text.render(blocked_plan(), color=True)


def test_legend_lists_only_symbols_in_use() -> None:
    only_create = dataclasses.replace(
        realistic_plan(),
        changes=tuple(c for c in realistic_plan().changes if c.action is Action.CREATE),
        notes=(),
    )
    out = text.render(only_create, color=False)
    assert out.startswith(
        "Job actions are indicated with the following symbols:\n  + create\n\nReconciler"
    )


def test_added_and_removed_whole_fields() -> None:
    change = Change(
        Action.CREATE,
        "ocr",
        Reason.SPEC_CHANGED,
        previous=ref("job-9", Status.SUCCESS),
        attempt=1,
        diffs=(
            FieldDiff("input_files", ["file-1", "file-2"], None, removed=True),
            FieldDiff("requests", None, "3 requests, sha256:0123456789ab", added=True),
            FieldDiff("spec", None, "0123456789ab", added=True),
        ),
    )
    out = text.render(Plan(workspace=WS, changes=(change,)), color=False)
    assert out.split("\n\n")[2] == (
        "  # ocr will get a new version: input_files, requests, spec changed\n"
        '  + job "ocr" {\n'
        '        previous    = "job-9" (SUCCESS)\n'
        "      - input_files = [\n"
        '          - "file-1",\n'
        '          - "file-2",\n'
        "        ] -> null\n"
        '      + requests    = "3 requests, sha256:0123456789ab"\n'
        '      + spec        = "0123456789ab"\n'
        "      + attempt     = 1\n"
        "      + id          = (known after apply)\n"
        "    }"
    )


def test_quoted_keys_removed_keys_and_history_deletes() -> None:
    changes = (
        Change(
            Action.REPLACE,
            "evals",
            Reason.SPEC_CHANGED,
            live=ref("j1", Status.QUEUED),
            attempt=1,
            diffs=(
                FieldDiff('metadata["a.b"]', "1", "2"),
                FieldDiff("metadata.gone", "x", None, removed=True),
                FieldDiff("inputs[1]", None, "data/b.jsonl@222222222222", added=True),
            ),
            then_delete=True,
        ),
        Change(
            Action.DELETE,
            "evals",
            Reason.HISTORY_LIMIT,
            live=ref("j0", Status.CANCELLATION_REQUESTED),
            await_terminal=True,
        ),
    )
    out = text.render(Plan(workspace=WS, changes=changes), color=False)
    blocks = out.split("\n\n")
    assert blocks[2] == (
        "  # evals must be replaced: metadata, inputs changed; the old job will be deleted "
        "(old version beyond history_limit)\n"
        '-/+ job "evals" {\n'
        '      ~ id       = "j1" -> (known after apply)\n'
        '        status   = "QUEUED"\n'
        "      ~ metadata = {\n"
        '          ~ "a.b"  = "1" -> "2"\n'
        '          - "gone" = "x" -> null\n'
        "        }\n"
        "      ~ inputs   = [\n"
        '          + "data/b.jsonl@222222222222",\n'
        "        ]\n"
        "    }"
    )
    assert blocks[3].startswith(
        "  # evals will be deleted once its cancellation completes "
        "(old version beyond history_limit)\n"
    )


def test_control_characters_from_the_server_are_escaped() -> None:
    hostile = Change(
        Action.DELETE, "old-job", Reason.REMOVED, live=ref("job-\x1b[2J", Status.SUCCESS)
    )
    out = text.render(Plan(workspace=WS, changes=(hostile,)), color=False)
    assert "\x1b" not in out
    assert 'id     = "job-\\u001b[2J"' in out


def test_targeted_re_run_and_request_changes() -> None:
    from reconciler.plan.model import Targeting
    from reconciler.plan.selection import Selection
    from reconciler.requestmap import RequestChange, RequestsDiff

    detail = RequestsDiff(
        level="fields",
        added=3,
        removed=1,
        changed=4,
        unchanged=2,
        unknown=0,
        changes=(
            RequestChange("0", "changed", ("body.messages",)),
            RequestChange("1", "removed"),
            RequestChange("2", "changed", ("body.max_tokens", "body.messages")),
            RequestChange("\x1b[31mred", "added"),
            RequestChange("4", "changed", ()),
            RequestChange("5", "added"),
            RequestChange("6", "added"),
            RequestChange("7", "changed", ("body.temperature",)),
        ),
    )
    diff = FieldDiff("requests", "8 requests, sha256:aaa", "10 requests, sha256:bbb")
    p = Plan(
        WS,
        changes=(
            Change(
                Action.REPLACE,
                "qa",
                Reason.SPEC_CHANGED,
                live=ref("job-1", Status.RUNNING),
                diffs=(dataclasses.replace(diff, requests=detail),),
            ),
            Change(
                Action.CREATE,
                "rerun",
                Reason.REQUESTED,
                attempt=1,
                previous=ref("job-2", Status.SUCCESS),
            ),
        ),
        targeting=Targeting(Selection(targets=("qa", "re*")), ("qa", "rerun"), 40, ("rerun",)),
    )
    assert text.render(p, color=False) == (
        "Targeted: 2 of 40 jobs (--target qa, --target 're*'); the others are not planned.\n"
        "\n"
        "Job actions are indicated with the following symbols:\n"
        "  + create\n"
        "-/+ replace (cancel, then create)\n"
        "\n"
        "Reconciler will perform the following actions in workspace research-evals:\n"
        "\n"
        "  # qa must be replaced: requests changed\n"
        '-/+ job "qa" {\n'
        '      ~ id       = "job-1" -> (known after apply)\n'
        '        status   = "RUNNING"\n'
        '      ~ requests = "8 requests, sha256:aaa" -> "10 requests, sha256:bbb"\n'
        '          ~ request "0": body.messages changed\n'
        '          - request "1"\n'
        '          ~ request "2": body.max_tokens, body.messages changed\n'
        '          + request "\\u001b[31mred"\n'
        '          ~ request "4": body changed\n'
        "            # ... and 3 more (2 added, 1 changed)\n"
        "            # (2 requests unchanged)\n"
        "    }\n"
        "\n"
        "  # rerun will be replaced, as requested\n"
        '  + job "rerun" {\n'
        '        previous = "job-2" (SUCCESS)\n'
        "      + attempt  = 1\n"
        "      + id       = (known after apply)\n"
        "    }\n"
        "\n"
        "Plan: 1 to create, 1 to replace, 0 to cancel, 0 to delete.\n"
    )
