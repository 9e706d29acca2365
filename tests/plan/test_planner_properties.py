"""Invariants of the planner over random desired sets and random live states (Hypothesis).

Live states mix managed jobs of every status, several versions per name (including
raced duplicates and ties within one second), and foreign jobs: untagged, tagged for
another workspace, or tagged without a job name. Foreign API objects go through
``LiveJob.from_api`` like the reader does; LiveJobs of another workspace are also handed
to the planner directly, which must ignore them too.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_factories import MEDIUM, SMALL, WS, raw_job, spec

from reconciler.api import Status
from reconciler.config.model import JobSpec, OnChange
from reconciler.live import LiveJob
from reconciler.plan.model import Action, GuardKind, Plan
from reconciler.plan.planner import Policy, plan

NAMES = ("alpha", "beta", "gamma", "delta")
GONE = ("omega",)  # only ever live, never desired


def variant(name: str, index: int) -> JobSpec:
    """Four versions of each job: two models times two metadata values."""
    return spec(name, model=(SMALL, MEDIUM)[index % 2], metadata={"v": str(index // 2)})


@st.composite
def desired_sets(draw: st.DrawFn) -> list[JobSpec]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True))
    specs = []
    for name in names:
        specs.append(
            dataclasses.replace(
                variant(name, draw(st.integers(0, 3))),
                max_attempts=draw(st.integers(1, 3)),
                on_change=draw(st.sampled_from(list(OnChange))),
                history_limit=draw(st.sampled_from([None, 0, 1, 2])),
            )
        )
    return specs


@st.composite
def raw_states(draw: st.DrawFn) -> list[dict[str, Any]]:
    """API job objects, managed and foreign, in listing order."""
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMES + GONE),
                st.integers(0, 3),  # spec variant
                st.sampled_from(list(Status)),
                st.integers(1, 3),  # attempt
                st.integers(0, 4),  # created_at: small, so ties happen
                st.sampled_from(["managed", "managed", "managed", "untagged", "other", "noname"]),
            ),
            max_size=14,
        )
    )
    raws = []
    for i, (name, index, status, attempt, at, kind) in enumerate(entries):
        raw = raw_job(
            variant(name, index),
            id=f"job-{i:02}",
            status=status,
            created_at=at,
            attempt=attempt,
            workspace="someone-else" if kind == "other" else WS,
        )
        if kind == "untagged":
            raw["metadata"] = {"team": "research"}
        elif kind == "noname":
            del raw["metadata"]["reconciler.job"]
        raws.append(raw)
    return raws


def decode(raws: Sequence[dict[str, Any]]) -> list[LiveJob]:
    """What the reader would hand the planner: the client-side re-filter applied."""
    return [j for seq, r in enumerate(raws) if (j := LiveJob.from_api(r, WS, seq=seq)) is not None]


def foreign_but_decoded(raws: Sequence[dict[str, Any]]) -> list[LiveJob]:
    """Other workspaces' jobs as LiveJobs: the planner itself must ignore them."""
    out = []
    for seq, raw in enumerate(raws):
        ws = raw["metadata"].get("reconciler.workspace")
        if ws and ws != WS and (job := LiveJob.from_api(raw, ws, seq=seq)) is not None:
            out.append(job)
    return out


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


def simulate_apply(
    p: Plan, live: Sequence[LiveJob], cancelled_status: Status, desired: Sequence[JobSpec]
) -> list[LiveJob]:
    """What apply leaves behind, as far as the next plan can tell: creates give QUEUED
    jobs tagged with their spec; a cancel without deletion leaves the job cancelling or
    cancelled; anything deleted (then_delete, await_terminal, delete) is gone."""
    jobs = {j.id: j for j in live}
    clock = max((j.created_at for j in live), default=0) + 1
    seq = max((j.seq for j in live), default=0) + 1
    for n, change in enumerate(p.changes):
        if change.live is not None:
            target = jobs[change.live.id]
            match change.action:
                case Action.CANCEL | Action.REPLACE if not change.then_delete:
                    jobs[target.id] = dataclasses.replace(target, status=cancelled_status)
                case Action.CANCEL | Action.REPLACE | Action.DELETE:
                    del jobs[target.id]
                case Action.CREATE:
                    raise AssertionError("a create acts on no live job")
        if change.spec is not None:
            assert change.attempt is not None
            raw = raw_job(
                change.spec,
                id=f"new-{n:02}",
                status=Status.QUEUED,
                created_at=clock,
                attempt=change.attempt,
            )
            created = LiveJob.from_api(raw, WS, seq=seq + n)
            assert created is not None
            jobs[created.id] = created
    return list(jobs.values())


@SETTINGS
@given(
    desired_sets(), raw_states(), st.sampled_from([Status.CANCELLATION_REQUESTED, Status.CANCELLED])
)
def test_applying_a_plan_converges(
    desired: list[JobSpec], raws: list[dict[str, Any]], cancelled: Status
) -> None:
    live = decode(raws)
    first = plan(desired, live, PERMISSIVE, workspace=WS)
    after = simulate_apply(first, live, cancelled, desired)
    second = plan(desired, after, PERMISSIVE, workspace=WS)
    assert second.changes == (), (first.changes, second.changes)
    assert second.violations == ()
