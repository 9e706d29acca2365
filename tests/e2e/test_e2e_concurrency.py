"""Two ``apply`` processes started together on the same root: both plan against the same
empty state and both create. One more ``apply`` keeps the oldest job of each name and
cancels (then deletes) the others: exactly one active job per name."""

from __future__ import annotations

import subprocess
from collections import Counter

from e2e.harness import E2E, inline_jobs


def test_two_racing_applies_converge_after_one_more_apply(e2e: E2E) -> None:
    names = [f"race-{i:02d}" for i in range(32)]
    root = e2e.root("race", inline_jobs(names), max_destroy=100)
    ws = root.workspace
    # Slow answers widen the window in which both processes have planned and neither has
    # finished creating, so the race really happens.
    e2e.admin.faults(latency=0.25)
    racers = [
        e2e.cli.start(root, "apply", "--auto-approve", stdout=subprocess.PIPE) for _ in range(2)
    ]
    outputs = [racer.communicate(timeout=60)[0] for racer in racers]
    e2e.admin.faults()
    assert [racer.returncode for racer in racers] == [0, 0], outputs

    raced = e2e.live.by_name(ws)
    assert sorted(raced) == names
    assert all(len(jobs) in (1, 2) for jobs in raced.values())
    assert sum(len(jobs) for jobs in raced.values()) > len(names), "the applies did not race"
    oldest = {name: jobs[0].id for name, jobs in raced.items()}

    e2e.admin.speed(100)  # cancelled duplicates settle in 5 ms, so they are deleted at once
    third = e2e.cli.ok(root, "apply", "--auto-approve")

    after = e2e.live.by_name(ws)
    assert {name: [j.id for j in jobs] for name, jobs in after.items()} == {
        name: [oldest[name]] for name in names
    }, third.stdout
    assert e2e.live.active_per_name(ws) == Counter(dict.fromkeys(names, 1))
    assert e2e.cli.run(root, "plan", "--detailed-exitcode").code == 0
