"""Scale sanity, not a benchmark: a plan over tens of thousands of jobs completes with the
right counts. Timing (100k jobs) belongs to the benchmarks, not to a test that could flake."""

from __future__ import annotations

import dataclasses

from plan_factories import MEDIUM, WS, changed, live, spec

from reconciler.api import Status
from reconciler.config.model import JobSpec
from reconciler.live import LiveJob
from reconciler.plan.model import Action, NoteKind
from reconciler.plan.planner import Policy, plan


def world(n: int) -> tuple[list[JobSpec], list[LiveJob]]:
    """n desired jobs; n managed live jobs (every 10th running, every 5th one's spec
    changed, every 50th removed from the config); n foreign jobs."""
    specs = [spec(f"job-{i:06}", input_files=["file-shared"]) for i in range(n)]
    template = live(specs[0], "template", Status.SUCCESS)
    jobs = [
        dataclasses.replace(
            template,
            id=f"j{i}",
            name=s.name,
            spec_digest=s.digest,
            status=Status.RUNNING if i % 10 == 0 else Status.SUCCESS,
            seq=i,
        )
        for i, s in enumerate(specs)
    ]
    foreign = [dataclasses.replace(j, id=f"f{j.seq}", workspace="other") for j in jobs]
    desired = [
        changed(s, model=MEDIUM) if i % 5 == 0 else s for i, s in enumerate(specs) if i % 50 != 1
    ]
    return desired, [*jobs, *foreign]


def test_twenty_thousand_jobs_plan_completes_with_the_right_counts() -> None:
    n = 20_000
    desired, live_jobs = world(n)
    p = plan(desired, live_jobs, Policy(max_destroy=n), workspace=WS)
    s = p.summary
    assert (s.create, s.replace, s.cancel, s.delete) == (n // 5 - n // 10, n // 10, 0, n // 50)
    assert len(p.notes) == n - n // 5 - n // 50
    assert sum(1 for note in p.notes if note.kind is NoteKind.DONE) == len(p.notes)
    assert all(c.diffs[0].path == "model" for c in p.changes if c.action is Action.REPLACE)
    assert p.violations == ()
