"""The markdown view for pull-request comments: exact output, and GitHub's size limit."""

from __future__ import annotations

import dataclasses
import re

from render_fixtures import WS, blocked_plan, many_creates, realistic_plan, ref

from reconciler.api import Status
from reconciler.plan.model import Action, Change, FieldDiff, Plan, Reason
from reconciler.render import markdown

REALISTIC = """\
### Reconciler plan for workspace `research-evals`

> [!WARNING]
> This plan cancels or deletes **3 live jobs** (1 replaced, 1 cancelled, 1 deleted). \
Check that this is intended before merging.

| Action | Jobs |
| :-- | --: |
| `+` create | 2 |
| `-/+` replace (cancel, then create) | 1 |
| `x` cancel | 1 |
| `-` delete | 1 |

**Plan: 2 to create, 1 to replace, 1 to cancel, 1 to delete.**

> [!NOTE]
> Jobs that will not be retried:
> - **flaky**: Job job-0007 ended FAILED on attempt 2 and max_attempts is 2: it will not be \
retried. Change the job's spec, or raise max_attempts, to run it again.

<details><summary><code>-/+</code> cheese-eval must be replaced: model, metadata, inputs \
changed</summary>

```diff
# cheese-eval must be replaced: model, metadata, inputs changed
!   job "cheese-eval" {
!       id       = "job-0001" -> (known after apply)
        status   = "RUNNING" (40/100)
!       model    = "mistral-small-latest" -> "mistral-medium-latest"
!       metadata = {
!           "dataset" = "cheese-v1" -> "cheese-v2"
        }
!       inputs   = [
-           "data/cheese.jsonl@111111111111",
+           "data/cheese.jsonl@222222222222",
        ]
    }
```

</details>

<details><summary><code>+</code> nightly will be retried: attempt 2 of 3 (job job-0004 ended \
FAILED)</summary>

```diff
# nightly will be retried: attempt 2 of 3 (job job-0004 ended FAILED)
+   job "nightly" {
        previous = "job-0004" (FAILED)
+       attempt  = 2
+       id       = (known after apply)
    }
```

</details>

<details><summary><code>x -</code> old-job will be cancelled, then deleted (removed from \
configuration) (and 1 more change)</summary>

```diff
# old-job will be cancelled, then deleted (removed from configuration)
!   job "old-job" {
        id     = "job-0003"
        status = "RUNNING" (10/50)
    }

# old-job will be deleted (removed from configuration)
-   job "old-job" {
        id     = "job-0002"
        status = "SUCCESS" (50/50)
    }
```

</details>

<details><summary><code>+</code> wine-quick will be created</summary>

```diff
# wine-quick will be created
+   job "wine-quick" {
+       endpoint      = "/v1/chat/completions"
+       model         = "mistral-small-latest"
+       requests      = (1 inline request)
+       metadata      = {
+           "team" = "research"
        }
+       timeout_hours = 24
+       attempt       = 1
+       id            = (known after apply)
    }
```

</details>

<details><summary>⏳ summary will be replaced once job job-0005 ends (on_change: wait): \
model, metadata changed</summary>

```diff
# summary will be replaced once job job-0005 ends (on_change: wait): model, metadata changed
    job "summary" {
        id       = "job-0005"
        status   = "RUNNING" (3/10)
!       model    = "mistral-small-latest" -> "mistral-large-latest"
!       metadata = {
+           "owner" = "ana"
        }
    }
```

</details>
"""


def test_realistic_plan() -> None:
    assert markdown.render(realistic_plan()) == REALISTIC


def test_no_changes() -> None:
    assert markdown.render(Plan(workspace=WS)) == (
        "### Reconciler plan for workspace `research-evals`\n\n"
        "No changes. Live jobs match the configuration.\n"
    )


def test_no_banner_without_destruction() -> None:
    creates = many_creates(2)
    out = markdown.render(creates)
    assert "[!WARNING]" not in out
    assert "| `+` create | 2 |" in out


def test_blocked_plan_leads_with_the_guards() -> None:
    out = markdown.render(blocked_plan())
    caution = out.index("> [!CAUTION]\n> **Apply is blocked by a safety guard** (exit code 3):\n")
    assert caution < out.index("<details>")
    assert (
        "> - The configuration declares no jobs, so this plan would cancel or delete every "
        "managed job of workspace research-evals (2 live jobs). If that is intended, re-run "
        "with --allow-destroy=2 (or use &#96;reconciler destroy&#96;).\n"
    ) in out
    assert "**2 live jobs** (1 cancelled, 1 deleted)" in out


def test_two_thousand_jobs_stay_under_githubs_limit() -> None:
    big = many_creates(2_000)
    out = markdown.render(big)
    assert len(out) <= markdown.MAX_CHARS
    shown = out.count("<details>")
    assert out.count("</details>") == shown
    assert 0 < shown < 2_000
    note = re.search(r"\*\*(\d+) jobs not shown\*\*", out)
    assert note is not None
    assert int(note.group(1)) == 2_000 - shown
    assert out.endswith(
        "this comment is limited to 65,536 characters. See the CI log, or run "
        "`reconciler plan --format text`, for the full plan.\n"
    )
    # Sections are dropped from the end: the first jobs are the ones shown.
    assert "job-00000 will be created" in out
    assert f"job-{shown - 1:05} will be created" in out
    assert f"job-{shown:05} will be created" not in out
    # The summary still counts everything.
    assert "| `+` create | 2000 |" in out


def test_a_plan_that_just_fits_is_not_truncated() -> None:
    out = markdown.render(many_creates(40))
    assert len(out) < markdown.MAX_CHARS and "not shown" not in out
    assert out.count("<details>") == 40


def test_fences_outgrow_backticks_in_values() -> None:
    change = Change(
        Action.REPLACE,
        "evals",
        Reason.SPEC_CHANGED,
        live=ref("j1", Status.RUNNING),
        attempt=1,
        diffs=(FieldDiff("metadata.note", "```", "````"),),
    )
    out = markdown.render(Plan(workspace=WS, changes=(change,)))
    assert "`````diff\n" in out and "\n`````\n" in out
    assert "**1 live job** (1 replaced)" in out


def test_server_text_cannot_open_html() -> None:
    retry = Change(
        Action.CREATE,
        "evals",
        Reason.RETRY,
        previous=ref("<img src=x onerror=alert(1)>", Status.FAILED),
        attempt=2,
    )
    out = markdown.render(Plan(workspace=WS, changes=(retry,)))
    summary = next(line for line in out.splitlines() if line.startswith("<details>"))
    assert summary == (
        "<details><summary><code>+</code> evals will be retried: attempt 2 "
        "(job &lt;img src=x onerror=alert(1)&gt; ended FAILED)</summary>"
    )


def test_thousands_of_guard_messages_are_capped_too() -> None:
    violation = blocked_plan().violations[0]
    many = dataclasses.replace(blocked_plan(), violations=(violation,) * 3_000)
    out = markdown.render(many)
    assert len(out) <= markdown.MAX_CHARS
    shown = out.count("> - ocr-archive has prevent_destroy set")
    note = re.search(r"\*\*2 jobs and (\d+) messages not shown\*\*", out)
    assert note is not None and int(note.group(1)) == 3_000 - shown
