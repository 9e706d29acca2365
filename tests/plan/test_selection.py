"""--target / --exclude / --replace: which names a plan covers (pure resolution), and the
planner honouring it — a targeted plan is the whole plan restricted to its jobs, its
guards count only those, and a re-run on request converges like any other change."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_factories import WS, live, spec
from plan_worlds import GONE, NAMES, decode, desired_sets, raw_states, simulate_apply

from reconciler.api import Status
from reconciler.config.model import JobSpec, OnChange
from reconciler.live import LiveJob
from reconciler.plan.model import Action, GuardKind, Plan, Reason
from reconciler.plan.planner import Policy, plan
from reconciler.plan.selection import Selection, resolve

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PERMISSIVE = Policy(max_destroy=1_000)
PATTERNS = st.sampled_from([*NAMES, *GONE, "*", "a*", "*a", "?eta", "[ab]*", "zzz"])


def selected(p: Plan, names: set[str]) -> Plan:
    return dataclasses.replace(
        p,
        changes=tuple(c for c in p.changes if c.name in names),
        notes=tuple(n for n in p.notes if n.name in names),
    )


# -- resolution --------------------------------------------------------------------------------


def test_no_selection_selects_every_known_name() -> None:
    r = resolve(Selection(), ["a", "b"], ["b", "gone"])
    assert r.names == {"a", "b", "gone"}
    assert (r.replace, r.total, r.problems) == (frozenset(), 3, ())


def test_globs_targets_and_excludes() -> None:
    names = ["eval-a", "eval-b", "eval-big", "other"]
    r = resolve(Selection(targets=("eval-*",), excludes=("eval-big",)), names, ["gone"])
    assert r.names == {"eval-a", "eval-b"} and r.total == 5 and r.problems == ()
    r = resolve(Selection(targets=("eval-?", "gone")), names, ["gone"])
    assert r.names == {"eval-a", "eval-b", "gone"}


def test_patterns_that_match_nothing_are_named() -> None:
    r = resolve(Selection(targets=("evl-a",), excludes=("x*",)), ["eval-a"], [])
    assert r.problems == (
        "--target 'evl-a' matches no job (did you mean eval-a?)",
        "--exclude 'x*' matches no job",
    )


def test_replace_needs_a_configured_selected_job() -> None:
    r = resolve(Selection(replace=("gone", "nope")), ["a"], ["gone"])
    assert r.problems == (
        "--replace 'gone': gone is not in the configuration, so there is no spec to run again",
        "--replace 'nope' matches no job",
    )
    r = resolve(Selection(targets=("a",), replace=("b",)), ["a", "b"], [])
    assert r.problems == ("--replace 'b': b is not selected by --target/--exclude",)
    r = resolve(Selection(replace=("*",)), ["a", "b"], ["gone"])  # a glob may span both
    assert r.replace == {"a", "b"} and r.problems == ()


@SETTINGS
@given(st.lists(PATTERNS, max_size=3), st.lists(PATTERNS, max_size=2), desired_sets())
def test_resolution_is_the_targets_minus_the_excludes(
    targets: list[str], excludes: list[str], desired: list[JobSpec]
) -> None:
    live_names = {"gamma", "omega"}
    names = {s.name for s in desired}
    r = resolve(Selection(tuple(targets), tuple(excludes)), names, live_names)
    known = names | live_names
    from fnmatch import fnmatchcase

    expected = {n for n in known if not targets or any(fnmatchcase(n, t) for t in targets)}
    expected -= {n for n in known if any(fnmatchcase(n, x) for x in excludes)}
    assert r.names == expected
    unmatched = [p for p in [*targets, *excludes] if not any(fnmatchcase(n, p) for n in known)]
    assert len(r.problems) == len(unmatched)


# -- the planner --------------------------------------------------------------------------------


@SETTINGS
@given(desired_sets(), raw_states(), st.lists(PATTERNS, min_size=1, max_size=3))
def test_a_targeted_plan_is_the_whole_plan_restricted_to_its_jobs(
    desired: list[JobSpec], raws: list[dict[str, Any]], targets: list[str]
) -> None:
    jobs = decode(raws)
    selection = Selection(targets=tuple(targets))
    whole = plan(desired, jobs, PERMISSIVE, workspace=WS)
    targeted = plan(
        desired, jobs, dataclasses.replace(PERMISSIVE, selection=selection), workspace=WS
    )
    names = set(resolve(selection, [s.name for s in desired], {j.name for j in jobs}).names)
    restricted = selected(whole, names)
    assert (targeted.changes, targeted.notes) == (restricted.changes, restricted.notes)
    assert targeted.targeting is not None
    assert set(targeted.targeting.selected) == names


@SETTINGS
@given(desired_sets(), raw_states(), st.lists(PATTERNS, min_size=1, max_size=2), st.integers(0, 4))
def test_guards_count_only_what_the_targeted_plan_destroys(
    desired: list[JobSpec], raws: list[dict[str, Any]], targets: list[str], max_destroy: int
) -> None:
    jobs = decode(raws)
    policy = Policy(max_destroy=max_destroy, selection=Selection(targets=tuple(targets)))
    p = plan(desired, jobs, policy, workspace=WS)
    blocked = GuardKind.MAX_DESTROY in {v.guard for v in p.violations}
    assert blocked == (len(p.destroyed_job_ids) > max_destroy)
    assert {c.name for c in p.changes} <= set(p.targeting.selected if p.targeting else ())


def rerun_tags(p: Plan, after: list[LiveJob]) -> list[LiveJob]:
    """simulate_apply, plus the tag apply stamps on a re-run (created as new-NN)."""
    by_id = {j.id: j for j in after}
    for n, change in enumerate(p.changes):
        ref = change.live or change.previous
        if change.reason is Reason.REQUESTED and ref is not None and f"new-{n:02}" in by_id:
            by_id[f"new-{n:02}"] = dataclasses.replace(by_id[f"new-{n:02}"], rerun_of=ref.id)
    return list(by_id.values())


@SETTINGS
@given(
    desired_sets(),
    raw_states(),
    st.sampled_from([Status.CANCELLATION_REQUESTED, Status.CANCELLED]),
)
def test_re_running_every_job_converges(
    desired: list[JobSpec], raws: list[dict[str, Any]], cancelled: Status
) -> None:
    jobs = decode(raws)
    policy = dataclasses.replace(PERMISSIVE, selection=Selection(replace=("*",)))
    first = plan(desired, jobs, policy, workspace=WS)
    for change in first.changes:
        if change.spec is not None:
            assert change.attempt == 1 or change.reason is not Reason.REQUESTED
    after = rerun_tags(first, simulate_apply(first, jobs, cancelled))
    second = plan(desired, after, PERMISSIVE, workspace=WS)
    assert second.changes == (), (first.changes, second.changes)


def test_replace_of_a_running_job_is_a_replace_counted_by_the_guards() -> None:
    a = spec("a", on_change=OnChange.WAIT)
    p = plan(
        [a],
        [live(a, "job-1", Status.RUNNING)],
        Policy(max_destroy=0, selection=Selection(replace=("a",))),
        workspace=WS,
    )
    (change,) = p.changes
    assert (change.action, change.reason, change.attempt) == (Action.REPLACE, Reason.REQUESTED, 1)
    assert [v.guard for v in p.violations] == [GuardKind.MAX_DESTROY]


def test_replace_of_a_finished_job_creates_a_new_version() -> None:
    a = spec("a", max_attempts=2)
    p = plan(
        [a],
        [live(a, "job-1", Status.FAILED, attempt=2)],
        Policy(selection=Selection(replace=("a",))),
        workspace=WS,
    )
    (change,) = p.changes
    assert (change.action, change.reason, change.attempt) == (Action.CREATE, Reason.REQUESTED, 1)
    assert change.previous is not None and change.previous.id == "job-1"
    assert p.violations == ()


def test_a_re_run_is_current_not_a_duplicate_of_the_version_it_re_ran() -> None:
    a = spec("a")
    old = live(a, "job-1", Status.SUCCESS, at=1)
    new = dataclasses.replace(live(a, "job-2", Status.QUEUED, at=2), rerun_of="job-1")
    assert plan([a], [old, new], PERMISSIVE, workspace=WS).changes == ()
    # Without the tag the two would be raced duplicates: the younger is cancelled.
    raced = dataclasses.replace(new, rerun_of=None)
    (change,) = plan([a], [old, raced], PERMISSIVE, workspace=WS).changes
    assert (change.action, change.reason) == (Action.CANCEL, Reason.DUPLICATE)
    # A tag naming no earlier version is a claim with nothing behind it: ignored.
    bogus = dataclasses.replace(new, rerun_of="job-9")
    (change,) = plan([a], [old, bogus], PERMISSIVE, workspace=WS).changes
    assert change.reason is Reason.DUPLICATE


def test_re_running_each_kind_of_current_version_converges() -> None:
    # The property above, for the cases that matter most, every status spelled out.
    for status in Status:
        a = spec("alpha", max_attempts=2)
        jobs = [live(a, "job-1", status)]
        policy = dataclasses.replace(PERMISSIVE, selection=Selection(replace=("alpha",)))
        first = plan([a], jobs, policy, workspace=WS)
        assert [c.reason for c in first.changes] == [Reason.REQUESTED], status
        after = rerun_tags(first, simulate_apply(first, jobs, Status.CANCELLED))
        assert plan([a], after, PERMISSIVE, workspace=WS).changes == (), status


def test_replace_re_runs_the_adopted_earlier_version_not_the_newest() -> None:
    # on_change: wait let an earlier version with the desired spec run behind a newer
    # version of another spec; plain planning adopts it. --replace re-runs *that* one
    # (it is what is in effect), so that the new version is not its raced duplicate.
    wanted = spec("a", on_change=OnChange.WAIT)
    other = spec("a", model="mistral-medium-latest", on_change=OnChange.WAIT)
    earlier = live(wanted, "job-1", Status.RUNNING, at=1)
    newest = live(other, "job-2", Status.RUNNING, at=2)
    assert plan([wanted], [earlier, newest], PERMISSIVE, workspace=WS).changes == ()
    p = plan(
        [wanted],
        [earlier, newest],
        dataclasses.replace(PERMISSIVE, selection=Selection(replace=("a",))),
        workspace=WS,
    )
    (change,) = p.changes
    assert (change.action, change.reason) == (Action.REPLACE, Reason.REQUESTED)
    assert change.live is not None and change.live.id == "job-1"
