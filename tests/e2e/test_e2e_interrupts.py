"""Ctrl-C (SIGINT to a real ``reconciler`` process) while applying and while following: an
interrupted apply says what is in flight, starts nothing new, skips ``--wait`` and exits
1; an interrupted ``wait`` says the jobs keep running and prints the command that
resumes following them (never click's bare ``Aborted!``)."""

from __future__ import annotations

import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from e2e.harness import E2E, Root, flat, inline_jobs

TIMEOUT = 60.0


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


class Interrupted:
    """Start ``reconciler ARGS``, send SIGINT once ``ready(stdout so far)`` holds."""

    def __init__(self, e2e: E2E, root: Root, args: list[str], ready: Callable[[str], bool]):
        process = e2e.cli.start(root, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert process.stdout is not None and process.stderr is not None
        errors = process.stderr
        stderr: list[str] = []
        reader = threading.Thread(target=lambda: stderr.append(errors.read()), daemon=True)
        reader.start()
        lines: list[str] = []
        deadline = time.monotonic() + TIMEOUT
        for line in process.stdout:
            lines.append(line)
            if ready("".join(lines)):
                process.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "".join(lines)
        else:
            raise AssertionError(f"ended before the interrupt:\n{''.join(lines)}{stderr}")
        rest = process.stdout.read()
        self.code = process.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        self.stdout = "".join(lines) + rest
        self.stderr = "".join(stderr)

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def test_ctrl_c_with_every_action_in_flight_stops_and_skips_wait(e2e: E2E) -> None:
    names = ["a", "b", "c"]
    root = e2e.root("ctrl-c-in-flight", inline_jobs(names))
    e2e.admin.faults(latency=1.5)  # every call takes 1.5 s: all three creates are in flight

    run = Interrupted(
        e2e,
        root,
        ["apply", "--auto-approve", "--wait", "--parallelism", "8"],
        lambda out: out.count(": Creating...") == len(names),
    )
    e2e.admin.faults()

    assert run.code == 1, str(run)
    assert (
        "Interrupt received: stopping. Nothing new will start; waiting for the 3 actions in "
        "flight to finish:"
    ) in run.stderr, str(run)
    for name in names:
        assert f"  - {name} (create)" in run.stderr
        assert f"{name}: Creation complete" in run.stdout  # in-flight work finished
    assert (
        "Error: Apply interrupted: 0 of 3 actions failed or stopped, 0 not started (done: 3 "
        "created, 0 replaced, 0 cancelled, 0 deleted)."
    ) in flat(run.stderr)
    assert "Apply complete" not in run.stdout
    assert "Waiting for the jobs to finish" not in run.stdout  # --wait skipped
    assert e2e.live.per_name(root.workspace) == dict.fromkeys(names, 1)


def resumed(command: str) -> list[str]:
    words = shlex.split(command)
    assert words[0] == "reconciler"
    return [sys.executable, "-m", "reconciler", *words[1:]]


def test_ctrl_c_while_waiting_says_the_jobs_keep_running_and_how_to_resume(e2e: E2E) -> None:
    root = e2e.root("ctrl-c-wait", inline_jobs(["one", "two"]))
    e2e.cli.ok(root, "apply", "--auto-approve")  # slow: QUEUED for a long while

    run = Interrupted(e2e, root, ["wait", "--poll", "0.1"], lambda out: "QUEUED" in out)

    assert run.code == 1, str(run)
    assert "Aborted!" not in run.stderr
    expected = f"reconciler -C {root.path.name} --server {e2e.url} wait one two"
    assert (
        "Error: interrupted: stopped following 2 jobs. They keep running on the server; to "
        "follow them again, run:"
    ) in flat(run.stderr), str(run)
    assert f"\n  {expected}\n" in run.stderr + "\n", str(run)
    assert e2e.live.active_per_name(root.workspace) == {"one": 1, "two": 1}
    # The printed command resumes following (here: until a timeout, the jobs are slow).
    again = subprocess.run(
        [*resumed(expected), "--timeout", "0.3", "--poll", "0.1"],
        capture_output=True,
        text=True,
        env=e2e.cli.env,
        cwd=e2e.cli.workdir,
        timeout=TIMEOUT,
        check=False,
    )
    assert "Timed out: 2 of 2 jobs still running (one, two)." in again.stdout, again


def test_ctrl_c_in_the_follow_phase_of_apply_wait(e2e: E2E) -> None:
    root = e2e.root("ctrl-c-apply-wait", inline_jobs(["solo"]))

    run = Interrupted(e2e, root, ["apply", "--auto-approve", "--wait"], lambda out: "QUEUED" in out)

    assert run.code == 1, str(run)
    assert "Apply complete: 1 created, 0 replaced, 0 cancelled, 0 deleted." in run.stdout
    assert "Waiting for the jobs to finish..." in run.stdout
    assert "Aborted!" not in run.stderr
    assert "stopped following 1 job. They keep running on the server" in flat(run.stderr)
    assert f"reconciler -C {root.path.name} --server {e2e.url} wait solo" in run.stderr
    assert e2e.live.active_per_name(root.workspace) == {"solo": 1}
