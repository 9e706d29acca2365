"""One test per row of DESIGN.md section 4's planning table, and per safety guard."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest
from plan_factories import (
    MEDIUM,
    WS,
    changed,
    history,
    live,
    local_input,
    only,
    raw_job,
    spec,
    summary_of,
)

from reconciler.api import Status
from reconciler.config.model import JobSpec, OnChange
from reconciler.live import LiveJob
from reconciler.plan.model import Action, FieldDiff, GuardKind, NoteKind, Plan, Reason
from reconciler.plan.planner import Policy, plan

P = Policy()
ACTIVE_RUNNING = [Status.QUEUED, Status.RUNNING]
UNSUCCESSFUL = [Status.FAILED, Status.TIMEOUT_EXCEEDED, Status.CANCELLED]
FINISHED = [Status.SUCCESS, *UNSUCCESSFUL]


def run(desired: Sequence[JobSpec], jobs: Sequence[LiveJob], policy: Policy = P) -> Plan:
    return plan(desired, jobs, policy, workspace=WS)


# -- desired present ---------------------------------------------------------------------


def test_present_without_live_version_is_created() -> None:
    s = spec("wine-quick")
    p = run([s], [])
    assert summary_of(p) == [("create", "wine-quick", "new", None)]
    (c,) = p.changes
    assert c.spec == s
    assert c.attempt == 1
    assert c.create_id is None  # the shell fills it in
    assert c.previous is None
    assert not p.notes and not p.violations


@pytest.mark.parametrize("status", [*ACTIVE_RUNNING, Status.CANCELLATION_REQUESTED])
def test_same_spec_active_is_in_progress(status: Status) -> None:
    s = spec("cheese-eval")
    p = run([s], [live(s, "j1", status, total=100, completed=40)])
    assert p.changes == ()
    (note,) = p.notes
    assert (note.name, note.kind, note.live.id) == ("cheese-eval", NoteKind.IN_PROGRESS, "j1")
    assert note.message == f"Job j1 is {status} (40/100)."


def test_same_spec_success_is_done() -> None:
    s = spec("cheese-eval")
    p = run([s], [live(s, "j1", Status.SUCCESS)])
    assert p.changes == ()
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.DONE, "j1")]


@pytest.mark.parametrize("status", UNSUCCESSFUL)
def test_same_spec_unsuccessful_is_retried_while_attempts_remain(status: Status) -> None:
    s = spec("flaky", max_attempts=3)
    p = run([s], [live(s, "j1", Status.FAILED, attempt=1), live(s, "j2", status, attempt=2)])
    assert summary_of(p) == [("create", "flaky", "retry", None)]
    (c,) = p.changes
    assert c.attempt == 3
    assert c.previous is not None and c.previous.id == "j2"
    assert c.spec == s
    assert not p.notes


@pytest.mark.parametrize("status", UNSUCCESSFUL)
def test_same_spec_unsuccessful_with_attempts_used_up_is_a_warning(status: Status) -> None:
    s = spec("flaky", max_attempts=2)
    p = run([s], [live(s, "j1", Status.FAILED, attempt=1), live(s, "j2", status, attempt=2)])
    assert p.changes == ()
    (note,) = p.notes
    assert (note.kind, note.live.id) == (NoteKind.EXHAUSTED, "j2")
    assert "attempt 2 and max_attempts is 2" in note.message


def test_default_max_attempts_never_retries() -> None:
    s = spec("once")
    p = run([s], [live(s, "j1", Status.FAILED)])
    assert p.changes == ()
    assert p.notes[0].kind is NoteKind.EXHAUSTED


def test_a_spec_change_resets_attempts() -> None:
    old = spec("flaky", max_attempts=2)
    new = changed(old, model=MEDIUM)
    p = run([new], [live(old, "j1", Status.FAILED, attempt=2)])
    (c,) = p.changes
    assert (c.action, c.reason, c.attempt) == (Action.CREATE, Reason.SPEC_CHANGED, 1)


def test_policy_fields_are_not_spec_changes() -> None:
    old = spec("job")
    new = changed(old, max_attempts=5, on_change=OnChange.WAIT, history_limit=3)
    p = run([new], [live(old, "j1", Status.SUCCESS)])
    assert p.changes == ()
    assert p.notes[0].kind is NoteKind.DONE


@pytest.mark.parametrize("status", ACTIVE_RUNNING)
def test_spec_changed_active_is_replaced(status: Status) -> None:
    old = spec("cheese-eval")
    new = changed(old, model=MEDIUM)
    p = run([new], [live(old, "j1", status)])
    assert summary_of(p) == [("replace", "cheese-eval", "spec_changed", "j1")]
    (c,) = p.changes
    assert c.spec == new and c.attempt == 1 and not c.then_delete
    assert c.diffs == (FieldDiff("model", "mistral-small-latest", MEDIUM),)


@pytest.mark.parametrize("status", ACTIVE_RUNNING)
def test_spec_changed_active_with_on_change_wait_is_waiting(status: Status) -> None:
    old = spec("summary", on_change=OnChange.WAIT)
    new = changed(old, model=MEDIUM)
    p = run([new], [live(old, "j1", status)])
    assert p.changes == ()
    (note,) = p.notes
    assert (note.kind, note.live.id) == (NoteKind.WAITING, "j1")
    assert note.diffs == (FieldDiff("model", "mistral-small-latest", MEDIUM),)


@pytest.mark.parametrize("on_change", list(OnChange))
def test_spec_changed_while_cancellation_requested_creates_without_cancelling(
    on_change: OnChange,
) -> None:
    old = spec("cheese-eval", on_change=on_change)
    new = changed(old, model=MEDIUM)
    p = run([new], [live(old, "j1", Status.CANCELLATION_REQUESTED)])
    assert summary_of(p) == [("create", "cheese-eval", "spec_changed", None)]
    (c,) = p.changes
    assert c.previous is not None and c.previous.id == "j1"
    assert c.diffs == (FieldDiff("model", "mistral-small-latest", MEDIUM),)


@pytest.mark.parametrize("status", FINISHED)
def test_spec_changed_finished_creates_a_new_version(status: Status) -> None:
    old = spec("cheese-eval")
    new = changed(old, metadata={"dataset": "cheese-v2"})
    p = run([new], [live(old, "j1", status)])
    assert summary_of(p) == [("create", "cheese-eval", "spec_changed", None)]
    (c,) = p.changes
    assert c.diffs == (FieldDiff("metadata.dataset", None, "cheese-v2", added=True),)
    assert c.previous is not None and c.previous.id == "j1"


# -- desired absent ----------------------------------------------------------------------


@pytest.mark.parametrize("status", ACTIVE_RUNNING)
def test_absent_active_is_cancelled_then_deleted(status: Status) -> None:
    s = spec("old-job")
    p = run([], [live(s, "j1", status)], Policy(allow_destroy=1))
    assert summary_of(p) == [("cancel", "old-job", "removed", "j1")]
    assert p.changes[0].then_delete and not p.changes[0].await_terminal


def test_absent_cancellation_requested_is_deleted_once_terminal() -> None:
    s = spec("old-job")
    p = run([], [live(s, "j1", Status.CANCELLATION_REQUESTED)], Policy(allow_destroy=1))
    assert summary_of(p) == [("delete", "old-job", "removed", "j1")]
    assert p.changes[0].await_terminal and not p.changes[0].then_delete


@pytest.mark.parametrize("status", FINISHED)
def test_absent_finished_is_deleted(status: Status) -> None:
    s = spec("old-job")
    p = run([], [live(s, "j1", status)], Policy(allow_destroy=1))
    assert summary_of(p) == [("delete", "old-job", "removed", "j1")]
    assert not p.changes[0].await_terminal


def test_absent_job_loses_every_version() -> None:
    s = spec("old-job")
    jobs = history(s, [Status.SUCCESS, Status.CANCELLATION_REQUESTED, Status.RUNNING])
    keep = spec("kept")
    p = run([keep], [*jobs, live(keep, "k1")])
    assert summary_of(p) == [
        ("cancel", "old-job", "removed", "old-job-3"),
        ("delete", "old-job", "removed", "old-job-1"),
        ("delete", "old-job", "removed", "old-job-2"),
    ]


# -- history -----------------------------------------------------------------------------


def _versions(name: str, n: int, *, limit: int | None) -> tuple[list[LiveJob], JobSpec]:
    """n finished versions with distinct specs, then the desired spec (the last one's)."""
    base = spec(name, history_limit=limit)
    specs = [changed(base, metadata={"v": str(i)}) for i in range(n)]
    jobs = [live(s, f"{name}-{i}", Status.SUCCESS, at=1_000 + i) for i, s in enumerate(specs)]
    return jobs, specs[-1]


def test_history_beyond_limit_is_deleted_newest_kept() -> None:
    jobs, current = _versions("evals", 5, limit=2)
    p = run([current], jobs)
    assert summary_of(p) == [
        ("delete", "evals", "history_limit", "evals-0"),
        ("delete", "evals", "history_limit", "evals-1"),
    ]
    assert p.notes[0].kind is NoteKind.DONE and p.notes[0].live.id == "evals-4"


def test_no_history_limit_keeps_everything() -> None:
    jobs, current = _versions("evals", 5, limit=None)
    assert run([current], jobs).changes == ()


def test_a_create_counts_the_version_it_supersedes_as_history() -> None:
    jobs, current = _versions("evals", 3, limit=2)
    p = run([changed(current, model=MEDIUM)], jobs)
    # evals-2 becomes history in this plan: history is then 0, 1, 2 and the limit is 2.
    assert summary_of(p) == [
        ("create", "evals", "spec_changed", None),
        ("delete", "evals", "history_limit", "evals-0"),
    ]


def test_a_retry_with_history_limit_zero_deletes_the_failed_attempt() -> None:
    s = spec("flaky", max_attempts=2, history_limit=0)
    p = run([s], [live(s, "j1", Status.FAILED)])
    assert summary_of(p) == [
        ("create", "flaky", "retry", None),
        ("delete", "flaky", "history_limit", "j1"),
    ]


def test_a_replace_beyond_the_limit_deletes_the_old_version_once_cancelled() -> None:
    old = spec("evals", history_limit=0)
    p = run([changed(old, model=MEDIUM)], [live(old, "j1", Status.RUNNING)])
    assert summary_of(p) == [("replace", "evals", "spec_changed", "j1")]
    assert p.changes[0].then_delete


def test_a_replace_within_the_limit_deletes_older_history_instead() -> None:
    jobs, current = _versions("evals", 2, limit=1)
    running = live(changed(current, timeout_hours=2), "evals-r", Status.RUNNING, at=2_000)
    p = run([changed(current, model=MEDIUM)], [*jobs, running])
    assert summary_of(p) == [
        ("replace", "evals", "spec_changed", "evals-r"),
        ("delete", "evals", "history_limit", "evals-0"),
        ("delete", "evals", "history_limit", "evals-1"),
    ]
    assert not p.changes[0].then_delete


def test_history_being_cancelled_beyond_the_limit_is_deleted_once_terminal() -> None:
    a = spec("evals", history_limit=0)
    b = changed(a, model=MEDIUM)
    p = run([b], [live(a, "j1", Status.CANCELLATION_REQUESTED, at=1), live(b, "j2", at=2)])
    assert summary_of(p) == [("delete", "evals", "history_limit", "j1")]
    assert p.changes[0].await_terminal


def test_older_running_version_is_not_history_under_wait() -> None:
    a = spec("evals", history_limit=0, on_change=OnChange.WAIT)
    b = changed(a, model=MEDIUM)
    p = run([b], [live(a, "j1", Status.RUNNING, at=1), live(b, "j2", Status.RUNNING, at=2)])
    assert p.changes == ()
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.IN_PROGRESS, "j2")]


def test_older_running_version_is_cancelled_under_replace() -> None:
    a = spec("evals")
    b = changed(a, model=MEDIUM)
    p = run([b], [live(a, "j1", Status.RUNNING, at=1), live(b, "j2", Status.RUNNING, at=2)])
    assert summary_of(p) == [("cancel", "evals", "superseded", "j1")]
    assert not p.changes[0].then_delete
    limited = run([changed(b, history_limit=0)], [live(a, "j1", Status.RUNNING, at=1)])
    assert limited.changes[0].action is Action.REPLACE and limited.changes[0].then_delete


# -- two applies raced -------------------------------------------------------------------


def test_raced_duplicates_keep_the_oldest_and_cancel_the_others() -> None:
    s = spec("cheese-eval")
    jobs = [live(s, f"j{i}", Status.RUNNING, at=1_000, seq=i) for i in (1, 2, 3)]
    p = run([s], jobs)
    assert summary_of(p) == [
        ("cancel", "cheese-eval", "duplicate", "j2"),
        ("cancel", "cheese-eval", "duplicate", "j3"),
    ]
    assert all(c.then_delete for c in p.changes)
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.IN_PROGRESS, "j1")]


@pytest.mark.parametrize("kept", [Status.QUEUED, Status.RUNNING, Status.SUCCESS])
def test_a_cancelled_duplicate_is_never_taken_for_the_current_version(kept: Status) -> None:
    s = spec("cheese-eval", max_attempts=3)
    first = live(s, "j1", kept, at=1_000, seq=1)
    # Next plans, while the duplicate's cancel goes through, and after it did.
    going = run([s], [first, live(s, "j2", Status.CANCELLATION_REQUESTED, at=1_000, seq=2)])
    assert summary_of(going) == [("delete", "cheese-eval", "duplicate", "j2")]
    assert going.changes[0].await_terminal
    gone = run([s], [first, live(s, "j2", Status.CANCELLED, at=1_000, seq=2)])
    assert summary_of(gone) == [("delete", "cheese-eval", "duplicate", "j2")]
    assert not gone.changes[0].await_terminal
    for p in (going, gone):
        assert [n.live.id for n in p.notes] == ["j1"]  # no retry of j2


def test_a_successful_duplicate_is_kept_as_history() -> None:
    s = spec("cheese-eval")
    jobs = [live(s, f"j{i}", Status.SUCCESS, at=1_000, seq=i) for i in (1, 2)]
    p = run([s], jobs)
    assert p.changes == ()
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.DONE, "j1")]


def test_a_reverted_spec_is_not_a_duplicate_of_its_earlier_run() -> None:
    a = spec("cheese-eval")
    b = changed(a, model=MEDIUM)
    jobs = [live(a, "j1", at=1), live(b, "j2", at=2), live(a, "j3", Status.RUNNING, at=3)]
    p = run([a], jobs)
    assert p.changes == ()
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.IN_PROGRESS, "j3")]


@pytest.mark.parametrize("on_change", list(OnChange))
def test_an_earlier_running_version_with_the_desired_spec_is_adopted_not_copied(
    on_change: OnChange,
) -> None:
    # b ran under on_change: wait while a newer a finished (the config went b -> a -> b):
    # the running b already computes what is wanted, so nothing new is created.
    b = spec("evals", model=MEDIUM, on_change=on_change)
    a = changed(b, model="mistral-small-latest")
    jobs = [live(b, "j1", Status.RUNNING, at=1), live(a, "j2", Status.SUCCESS, at=2)]
    p = run([b], jobs)
    assert p.changes == ()
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.IN_PROGRESS, "j1")]
    # A newer version of another spec that still runs is superseded under replace.
    jobs[1] = live(a, "j2", Status.RUNNING, at=2)
    p = run([b], jobs)
    expected = [("cancel", "evals", "superseded", "j2")] if on_change is OnChange.REPLACE else []
    assert summary_of(p) == expected
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.IN_PROGRESS, "j1")]


def test_a_retry_in_flight_is_current_not_its_failed_predecessor() -> None:
    s = spec("flaky", max_attempts=3)
    jobs = [live(s, "j1", Status.FAILED, at=1), live(s, "j2", Status.RUNNING, at=2, attempt=2)]
    p = run([s], jobs)
    assert p.changes == ()
    assert [(n.kind, n.live.id) for n in p.notes] == [(NoteKind.IN_PROGRESS, "j2")]


# -- ownership ---------------------------------------------------------------------------


def test_jobs_of_other_workspaces_are_ignored() -> None:
    s = spec("cheese-eval")
    theirs = live(s, "x1", Status.RUNNING, workspace="someone-else")
    p = run([s], [theirs])
    assert summary_of(p) == [("create", "cheese-eval", "new", None)]
    assert run([], [theirs]).changes == ()
    assert run([], [theirs]).violations == ()  # nothing managed: the empty guard stays quiet


# -- diffs -------------------------------------------------------------------------------


def test_diffs_name_nested_metadata_and_list_items() -> None:
    old = spec(
        "cheese-eval",
        inputs=[local_input("data/a.jsonl", "1"), local_input("data/b.jsonl", "2")],
        metadata={"team": "research", "dataset": "v1", "gone": "x"},
    )
    new = changed(
        old,
        model=MEDIUM,
        inputs=(local_input("data/a.jsonl", "3"),),
        metadata=(("dataset", "v2"), ("owner", "ana"), ("team", "research")),
        timeout_hours=48,
    )
    p = run([new], [live(old, "j1", Status.RUNNING)])
    (c,) = p.changes
    assert c.diffs == (
        FieldDiff("model", "mistral-small-latest", MEDIUM),
        FieldDiff("metadata.dataset", "v1", "v2"),
        FieldDiff("metadata.gone", "x", None, removed=True),
        FieldDiff("metadata.owner", None, "ana", added=True),
        FieldDiff("timeout_hours", 24, 48),
        FieldDiff("inputs[0]", "data/a.jsonl@111111111111", "data/a.jsonl@333333333333"),
        FieldDiff("inputs[1]", "data/b.jsonl@222222222222", None, removed=True),
    )
    assert [d.field for d in c.diffs] == [
        "model",
        "metadata",
        "metadata",
        "metadata",
        "timeout_hours",
        "inputs",
        "inputs",
    ]


def test_switching_input_source_is_one_removed_and_one_added_field() -> None:
    old = spec("ocr", input_files=["file-1"])
    new = changed(old, input_files=(), requests_json='[{"body":{}}]')
    (c,) = run([new], [live(old, "j1")]).changes
    assert [(d.path, d.added, d.removed) for d in c.diffs] == [
        ("input_files", False, True),
        ("requests", True, False),
    ]
    assert c.diffs[0].old == ["file-1"]
    assert str(c.diffs[1].new).startswith("1 request, sha256:")


def test_a_digest_change_without_field_change_shows_a_spec_pseudo_diff() -> None:
    s = spec("legacy")
    # Same fields, but a job made by an older tool digested its spec differently.
    raw_digest = "f" * 64
    job = LiveJob.from_api(raw_job(s, id="j1", extra_metadata={"reconciler.spec": raw_digest}), WS)
    assert job is not None
    (c,) = run([s], [job]).changes
    assert c.diffs == (FieldDiff("spec", "ffffffffffff", s.digest[:12]),)


# -- guards ------------------------------------------------------------------------------


def test_prevent_destroy_blocks_a_replace() -> None:
    old = spec("ocr-archive", prevent_destroy=True)
    p = run([changed(old, model=MEDIUM)], [live(old, "j1", Status.RUNNING)])
    (v,) = p.violations
    assert v.guard is GuardKind.PREVENT_DESTROY and v.names == ("ocr-archive",)
    assert "would replace job j1" in v.message
    assert p.changes[0].protected


def test_prevent_destroy_of_a_removed_job_comes_from_policy_protected() -> None:
    s = spec("ocr-archive")
    keep = spec("other")
    policy = Policy(protected=frozenset({"ocr-archive"}))
    p = run([keep], [live(s, "j1", Status.RUNNING), live(s, "j0", Status.SUCCESS, at=1)], policy)
    (v,) = p.violations
    assert v.message.startswith(
        "ocr-archive has prevent_destroy set, but this plan would cancel job j1 and delete job j0."
    )


def test_prevent_destroy_cannot_be_overridden_by_allow_destroy() -> None:
    s = spec("ocr-archive", prevent_destroy=True)
    replaced = run(
        [changed(s, model=MEDIUM)], [live(s, "j1", Status.RUNNING)], Policy(allow_destroy=1)
    )
    assert [v.guard for v in replaced.violations] == [GuardKind.PREVENT_DESTROY]
    destroy = Policy(destroy_all=True, allow_destroy=2)
    p = run(
        [s], [live(s, "j1", Status.SUCCESS, at=1), live(s, "j2", Status.RUNNING, at=2)], destroy
    )
    assert [v.guard for v in p.violations] == [GuardKind.PREVENT_DESTROY]
    assert "cannot be overridden by --allow-destroy" in p.violations[0].message


def _removed(n: int) -> list[LiveJob]:
    return [live(spec(f"old-{i:02}"), f"j{i:02}", Status.SUCCESS) for i in range(n)]


def test_max_destroy_is_a_ceiling_not_a_target() -> None:
    p = run([spec("keep")], _removed(10))
    assert len(p.destroyed_job_ids) == 10 and p.violations == ()


def test_more_than_max_destroy_is_blocked_and_says_what_n_is_needed() -> None:
    p = run([spec("keep")], _removed(11))
    (v,) = p.violations
    assert v.guard is GuardKind.MAX_DESTROY
    assert v.message == (
        "This plan would cancel or delete 11 live jobs, more than safety.max_destroy (10). "
        "If that is intended, re-run with --allow-destroy=11."
    )
    assert len(v.names) == 11


def test_allow_destroy_must_name_exactly_the_count() -> None:
    assert run([spec("keep")], _removed(11), Policy(allow_destroy=11)).violations == ()
    for wrong in (10, 12):
        (v,) = run([spec("keep")], _removed(11), Policy(allow_destroy=wrong)).violations
        assert v.message == (
            "This plan would cancel or delete 11 live jobs, more than safety.max_destroy (10). "
            f"--allow-destroy={wrong} does not match it: review the plan, then re-run with "
            "--allow-destroy=11."
        )


def test_replaces_count_and_each_job_counts_once() -> None:
    old = [spec(f"job-{i}", history_limit=0) for i in range(3)]
    jobs = [live(s, f"j{i}", Status.RUNNING) for i, s in enumerate(old)]
    # Each replace also deletes its old job (then_delete): still one job each.
    p = run([changed(s, model=MEDIUM) for s in old], jobs, Policy(max_destroy=2))
    assert [c.then_delete for c in p.changes] == [True] * 3
    (v,) = p.violations
    assert v.guard is GuardKind.MAX_DESTROY and "delete 3 live jobs" in v.message
    assert (
        run([changed(s, model=MEDIUM) for s in old], jobs, Policy(max_destroy=3)).violations == ()
    )


def test_empty_desired_set_is_blocked_even_below_max_destroy() -> None:
    p = run([], _removed(2))
    (v,) = p.violations
    assert v.guard is GuardKind.EMPTY_DESIRED
    assert v.message == (
        "The configuration declares no jobs, so this plan would cancel or delete every managed "
        f"job of workspace {WS} (2 live jobs). If that is intended, re-run with "
        "--allow-destroy=2 (or use `reconciler destroy`)."
    )
    assert run([], _removed(2), Policy(allow_destroy=2)).violations == ()
    (wrong,) = run([], _removed(2), Policy(allow_destroy=3)).violations
    assert "--allow-destroy=3 does not match it" in wrong.message
    assert "re-run with --allow-destroy=2" in wrong.message


def test_empty_desired_and_max_destroy_both_name_the_same_n() -> None:
    p = run([], _removed(12))
    assert [v.guard for v in p.violations] == [GuardKind.MAX_DESTROY, GuardKind.EMPTY_DESIRED]
    assert all("--allow-destroy=12" in v.message for v in p.violations)
    assert run([], _removed(12), Policy(allow_destroy=12)).violations == ()


def test_destroy_all_removes_everything_without_the_empty_guard() -> None:
    s = spec("cheese-eval")
    jobs = [live(s, "j1", Status.SUCCESS, at=1), live(s, "j2", Status.RUNNING, at=2)]
    p = run([s], jobs, Policy(destroy_all=True))
    assert summary_of(p) == [
        ("cancel", "cheese-eval", "destroy", "j2"),
        ("delete", "cheese-eval", "destroy", "j1"),
    ]
    assert p.violations == ()
    # ... but max_destroy still applies.
    big = run([], _removed(11), Policy(destroy_all=True))
    assert [v.guard for v in big.violations] == [GuardKind.MAX_DESTROY]


# -- shape -------------------------------------------------------------------------------


def test_changes_are_ordered_by_name_action_and_age_and_notes_by_name() -> None:
    a, b, c = spec("a-job"), spec("b-job"), spec("c-job")
    gone = spec("b-gone")
    jobs = [
        live(c, "c1", Status.RUNNING),
        live(gone, "g2", Status.SUCCESS, at=5),
        live(gone, "g1", Status.RUNNING, at=9),
        live(gone, "g0", Status.SUCCESS, at=1),
        live(a, "a1", Status.SUCCESS),
    ]
    p = run([c, b, a], jobs)
    assert summary_of(p) == [
        ("cancel", "b-gone", "removed", "g1"),
        ("delete", "b-gone", "removed", "g0"),
        ("delete", "b-gone", "removed", "g2"),
        ("create", "b-job", "new", None),
    ]
    assert [n.name for n in p.notes] == ["a-job", "c-job"]


def test_planning_is_deterministic_whatever_the_input_order() -> None:
    specs = [spec(f"job-{i}", max_attempts=2, history_limit=1) for i in range(8)]
    statuses = itertools.cycle(list(Status))
    jobs = [
        live(s if i % 3 else changed(s, model=MEDIUM), f"j{i}-{k}", next(statuses), at=k)
        for i, s in enumerate(specs)
        for k in range(3)
    ] + _removed(4)
    first = run(specs, jobs, Policy(allow_destroy=0))
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(jobs)
        rng.shuffle(specs)
        assert run(specs, jobs, Policy(allow_destroy=0)) == first


def test_duplicate_desired_names_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="duplicate job name"):
        run([spec("a"), spec("a")], [])


def test_create_ids_fill_creates_and_replaces_only_and_keep_existing_ones() -> None:
    old = spec("replaced")
    p = run([spec("new-job"), changed(old, model=MEDIUM)], [live(old, "j1", Status.RUNNING)])
    counter = itertools.count(1)
    filled = p.with_create_ids(lambda: f"cid-{next(counter)}")
    assert [(c.action, c.create_id) for c in filled.changes] == [
        (Action.CREATE, "cid-1"),
        (Action.REPLACE, "cid-2"),
    ]
    assert filled.with_create_ids(lambda: "other") == filled
    assert only(p, Action.CREATE)[0].create_id is None  # the original is untouched
