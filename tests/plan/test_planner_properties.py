"""Invariants of the planner over random desired sets and random live states (Hypothesis).

Live states mix managed jobs of every status, several versions per name (including
raced duplicates and ties within one second), and foreign jobs: untagged, tagged for
another workspace, or tagged without a job name. Foreign API objects go through
``LiveJob.from_api`` like the reader does; LiveJobs of another workspace are also handed
to the planner directly, which must ignore them too.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_factories import WS
from plan_worlds import decode, desired_sets, foreign_but_decoded, raw_states, simulate_apply

from reconciler.api import Status
from reconciler.config.model import JobSpec
from reconciler.plan.model import Action, GuardKind, Plan
from reconciler.plan.planner import Policy, plan


def touched_ids(p: Plan) -> set[str]:
    ids = {c.live.id for c in p.changes if c.live} | {n.live.id for n in p.notes}
    return ids | {c.previous.id for c in p.changes if c.previous}


PERMISSIVE = Policy(max_destroy=1_000)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(desired_sets(), raw_states())
def test_foreign_jobs_never_appear_in_a_plan(
    desired: list[JobSpec], raws: list[dict[str, Any]]
) -> None:
    managed = decode(raws)
    foreign = foreign_but_decoded(raws)
    p = plan(desired, [*managed, *foreign], PERMISSIVE, workspace=WS)
    managed_ids = {j.id for j in managed}
    assert touched_ids(p) <= managed_ids
    assert not touched_ids(p) & {j.id for j in foreign}
    assert p == plan(desired, managed, PERMISSIVE, workspace=WS)


@SETTINGS
@given(desired_sets(), raw_states(), st.randoms(use_true_random=False))
def test_planning_is_deterministic(
    desired: list[JobSpec], raws: list[dict[str, Any]], rng: random.Random
) -> None:
    live = decode(raws)
    first = plan(desired, live, PERMISSIVE, workspace=WS)
    assert plan(desired, live, PERMISSIVE, workspace=WS) == first
    rng.shuffle(live)
    rng.shuffle(desired)
    assert plan(desired, live, PERMISSIVE, workspace=WS) == first


@SETTINGS
@given(desired_sets(), raw_states())
def test_each_live_job_gets_at_most_one_change(
    desired: list[JobSpec], raws: list[dict[str, Any]]
) -> None:
    p = plan(desired, decode(raws), PERMISSIVE, workspace=WS)
    acted = [c.live.id for c in p.changes if c.live is not None]
    assert len(acted) == len(set(acted))
    assert not set(acted) & {n.live.id for n in p.notes}  # a noted job is left alone
    assert len([n.name for n in p.notes]) == len({n.name for n in p.notes})
    for c in p.changes:
        assert (c.live is None) == (c.action is Action.CREATE)
        assert (c.spec is not None) == (c.action in (Action.CREATE, Action.REPLACE))
        assert not (c.then_delete and c.await_terminal)


@SETTINGS
@given(desired_sets(), raw_states(), st.integers(0, 6), st.none() | st.integers(0, 14))
def test_guard_counts_are_the_distinct_destroyed_jobs(
    desired: list[JobSpec], raws: list[dict[str, Any]], max_destroy: int, allow: int | None
) -> None:
    policy = Policy(max_destroy=max_destroy, allow_destroy=allow)
    p = plan(desired, decode(raws), policy, workspace=WS)
    destroying = [c for c in p.changes if c.action.destroys]
    count = len(p.destroyed_job_ids)
    assert count == len(destroying)
    guards = {v.guard: v for v in p.violations}
    tripped = count > max_destroy and allow != count
    assert (GuardKind.MAX_DESTROY in guards) == tripped
    if tripped:
        assert f"--allow-destroy={count}." in guards[GuardKind.MAX_DESTROY].message
        assert set(guards[GuardKind.MAX_DESTROY].names) == {c.name for c in destroying}
    empty = not desired and bool(decode(raws)) and allow != count
    assert (GuardKind.EMPTY_DESIRED in guards) == empty


@SETTINGS
@given(
    desired_sets(), raw_states(), st.sampled_from([Status.CANCELLATION_REQUESTED, Status.CANCELLED])
)
def test_applying_a_plan_converges(
    desired: list[JobSpec], raws: list[dict[str, Any]], cancelled: Status
) -> None:
    live = decode(raws)
    first = plan(desired, live, PERMISSIVE, workspace=WS)
    after = simulate_apply(first, live, cancelled)
    second = plan(desired, after, PERMISSIVE, workspace=WS)
    assert second.changes == (), (first.changes, second.changes)
    assert second.violations == ()
