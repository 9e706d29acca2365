"""Random worlds for planner properties: desired sets, live states (managed and foreign
jobs, as API objects), and a simulated apply of a plan onto a live state.

Live states mix managed jobs of every status, several versions per name (including raced
duplicates and ties within one second), and foreign jobs: untagged, tagged for another
workspace, or tagged without a job name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from hypothesis import strategies as st
from plan_factories import MEDIUM, SMALL, WS, raw_job, spec

from reconciler.api import Status
from reconciler.config.model import JobSpec, OnChange
from reconciler.live import LiveJob
from reconciler.plan.model import Action, Plan

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


def simulate_apply(p: Plan, live: Sequence[LiveJob], cancelled_status: Status) -> list[LiveJob]:
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
