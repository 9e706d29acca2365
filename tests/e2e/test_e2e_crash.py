"""Crash safety: ``apply`` (and ``destroy``) killed with SIGKILL at seeded random points.

After every kill the plan shows exactly the remaining work, read against live state
observed independently through the SDK, and no name ever has a duplicate; the next full
run converges. Kills land while creating, while replacing and while destroying; a Ctrl-C
(SIGINT) or a SIGTERM (a cancelled CI job) stops cleanly and leaves the same guarantees.

Kill points are counted in completed actions (lines the apply prints as it goes) plus a
random few milliseconds, so every kill lands mid-run whatever the machine's speed.
"""

from __future__ import annotations

import queue
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from typing import Any

import pytest

from e2e.harness import E2E, Cli, Root, inline_jobs, plan_json, planned

SEED = 5150
N_JOBS = 200
NEW_MODEL = "mistral-large-latest"
DONE_MARKERS = (
    "Creation complete",
    "Replacement complete",
    "Cancelled and deleted",
    "Deletion complete",
    "Cancellation complete",
)
# A request in flight when the client died is finished by the server within this time.
SERVER_QUIET = 0.3
RUNNING = ("QUEUED", "RUNNING")  # not yet cancelled: a destroy cancels them, a replace too


class Killed:
    """Start a command, SIGKILL it once ``after`` actions completed (+ a little jitter)."""

    def __init__(self, cli: Cli, root: Root, args: list[str], after: int, rng: random.Random):
        self.lines: list[str] = []
        done: queue.Queue[None] = queue.Queue()
        process = cli.start(root, *args, stdout=subprocess.PIPE)
        assert process.stdout is not None
        stdout = process.stdout

        def read() -> None:
            count = 0
            for line in stdout:
                self.lines.append(line)
                if any(marker in line for marker in DONE_MARKERS):
                    count += 1
                    if count == after:
                        done.put(None)
            done.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        done.get(timeout=60)
        time.sleep(rng.uniform(0.0, 0.02))
        process.send_signal(signal.SIGKILL)
        self.code = process.wait(timeout=10)
        reader.join(timeout=10)
        time.sleep(SERVER_QUIET)

    @property
    def output(self) -> str:
        return "".join(self.lines)


def no_duplicates(e2e: E2E, ws: str, *, model: str | None = None) -> dict[str, list[Any]]:
    """Live jobs by name; asserts no name has two jobs of the same spec (model)."""
    by_name = e2e.live.by_name(ws)
    for name, jobs in by_name.items():
        models = Counter(j.model for j in jobs)
        assert max(models.values()) == 1, f"{name} has a duplicate: {jobs}"
        if model is not None:
            assert models[model] <= 1
    return by_name


@pytest.mark.slow
def test_kills_while_creating_replacing_and_destroying_lose_nothing(e2e: E2E) -> None:
    rng = random.Random(SEED)
    cli = e2e.cli
    names = [f"job-{i:03d}" for i in range(N_JOBS)]
    root = e2e.root("crash", inline_jobs(names), max_destroy=1000)
    ws = root.workspace

    # -- creating: four kills in a row, each leaving exactly the missing names to create ----
    for trial in range(4):
        killed = Killed(cli, root, ["apply", "--auto-approve"], rng.randint(5, 35), rng)
        assert killed.code == -signal.SIGKILL, f"trial {trial}: finished before the kill"
        live = no_duplicates(e2e, ws)
        assert 0 < len(live) < N_JOBS, f"trial {trial}: {len(live)} jobs"
        document = plan_json(cli.run(root, "plan", "--format", "json"))
        assert planned(document, "create") == sorted(set(names) - set(live)), f"trial {trial}"
        assert document["summary"]["total"] == N_JOBS - len(live)
        assert set(no_duplicates(e2e, ws)) == set(live)  # the plan wrote nothing
    finished = cli.ok(root, "apply", "--auto-approve")
    assert e2e.live.per_name(ws) == Counter(dict.fromkeys(names, 1)), finished.stdout
    assert cli.run(root, "plan", "--detailed-exitcode").code == 0

    # -- replacing: half the jobs change model; the old versions are still QUEUED ------------
    edited = names[::2]
    for name in edited:
        root.jobs[name]["model"] = NEW_MODEL
    root.write()
    e2e.admin.speed(100)  # cancels settle in 5 ms; the new versions run at once
    killed = Killed(cli, root, ["apply", "--auto-approve"], rng.randint(10, 60), rng)
    assert killed.code == -signal.SIGKILL, "finished before the kill"
    live = no_duplicates(e2e, ws, model=NEW_MODEL)
    done = {n for n in edited if any(j.model == NEW_MODEL for j in live[n])}
    assert 0 < len(done) < len(edited)
    old_running = {n for n in edited if n not in done and live[n][0].status in RUNNING}
    document = plan_json(cli.run(root, "plan", "--format", "json"))
    # Not yet cancelled: a replace. Cancelled but not re-created: a create. Done: nothing.
    assert planned(document, "replace") == sorted(old_running)
    assert planned(document, "create") == sorted(set(edited) - done - old_running)
    assert document["summary"]["total"] == len(edited) - len(done)
    cli.ok(root, "apply", "--auto-approve")
    live = no_duplicates(e2e, ws, model=NEW_MODEL)
    for name in names:
        versions = live[name]
        if name in edited:
            assert [j.model for j in versions] == ["mistral-small-latest", NEW_MODEL]
            assert versions[0].status in ("CANCELLED", "CANCELLATION_REQUESTED")
        else:
            assert [j.model for j in versions] == ["mistral-small-latest"]
            assert versions[0].status in RUNNING
    assert cli.run(root, "plan", "--detailed-exitcode").code == 0

    # -- destroying: every job, killed half-way; the plan names exactly what is left ---------
    killed = Killed(cli, root, ["destroy", "--auto-approve"], rng.randint(10, 80), rng)
    assert killed.code == -signal.SIGKILL, "finished before the kill"
    left = e2e.live.jobs(ws)
    assert 0 < len(left) < N_JOBS + len(edited)
    document = plan_json(cli.run(root, "plan", "--destroy", "--format", "json"))
    targets = [c["live"]["id"] for c in document["changes"]]
    assert sorted(targets) == sorted(j.id for j in left)
    expected_actions = {j.id: "cancel" if j.status in RUNNING else "delete" for j in left}
    assert {c["live"]["id"]: c["action"] for c in document["changes"]} == expected_actions
    cli.ok(root, "destroy", "--auto-approve")
    assert e2e.live.jobs(ws) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupt_stops_starting_work_and_the_next_apply_finishes_it(
    shared_e2e: E2E, signum: signal.Signals
) -> None:
    e2e = shared_e2e
    names = [f"job-{i:02d}" for i in range(60)]
    root = e2e.root(f"interrupted-{int(signum)}", inline_jobs(names))
    ws = root.workspace
    e2e.admin.faults(latency=0.05)  # slow enough to interrupt half-way
    process = e2e.cli.start(
        root,
        "apply",
        "--auto-approve",
        "--parallelism",
        "2",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line)
        if sum("Creation complete" in x for x in lines) == 10:
            process.send_signal(signum)
            break
    rest, errors = process.communicate(timeout=30)
    output = "".join(lines) + rest + errors
    e2e.admin.faults()

    assert process.returncode == 1, output
    live = e2e.live.per_name(ws)
    assert 10 <= len(live) < 60 and max(live.values()) == 1
    # Work in flight finished and was reported; nothing new started.
    assert sum("Creation complete" in x for x in output.splitlines()) == len(live)
    assert (
        f"Error: Apply interrupted: 0 of 60 actions failed or stopped, {60 - len(live)} not "
        f"started (done: {len(live)} created, 0 replaced, 0 cancelled, 0 deleted). Run plan to "
        "see what is left."
    ) in output
    document = plan_json(e2e.cli.run(root, "plan", "--format", "json"))
    assert planned(document, "create") == sorted(set(names) - set(live))
    e2e.cli.ok(root, "apply", "--auto-approve")
    assert e2e.live.per_name(ws) == Counter(dict.fromkeys(names, 1))
