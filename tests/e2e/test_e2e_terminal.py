"""On a real terminal (a pseudo-terminal from the ``pty`` module): apply asks, and only the
exact answer ``yes`` proceeds; colour appears on a terminal unless NO_COLOR is set."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time

import pytest

from e2e.harness import E2E, inline_jobs

PROMPT = b"Enter a value:"
TIMEOUT = 60.0


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


def on_terminal(
    command: list[str], env: dict[str, str], answer: str | None = None
) -> tuple[int, str]:
    """Run ``command`` with a pseudo-terminal as stdin, stdout and stderr; type ``answer``
    when it prompts. Returns the exit code and everything it showed."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        command, stdin=follower, stdout=follower, stderr=follower, env=env, close_fds=True
    )
    os.close(follower)
    shown = b""
    answered = False
    deadline = time.monotonic() + TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the process closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
                if answer is not None and not answered and PROMPT in shown:
                    os.write(leader, answer.encode() + b"\n")
                    answered = True
            elif process.poll() is not None:
                break
        else:
            raise AssertionError(f"timed out; shown so far:\n{shown.decode(errors='replace')}")
        code = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
    return code, shown.decode(errors="replace").replace("\r\n", "\n")


@pytest.mark.parametrize("answer", ["no", "YES", "", "yes please"])
def test_anything_but_yes_declines_and_writes_nothing(e2e: E2E, answer: str) -> None:
    root = e2e.root(f"tty-{len(answer)}-{answer.lower().replace(' ', '-')}", inline_jobs(["a"]))

    code, shown = on_terminal(e2e.cli.command(root, "apply"), e2e.cli.env, answer)

    assert code == 1, shown
    assert "Only 'yes' will be accepted to approve." in shown
    assert "Error: Apply cancelled: only 'yes' approves." in shown
    assert e2e.admin.writes() == []
    assert e2e.live.jobs(root.workspace) == []


def test_yes_applies(e2e: E2E) -> None:
    root = e2e.root("tty-yes", inline_jobs(["a", "b"]))

    code, shown = on_terminal(e2e.cli.command(root, "apply"), e2e.cli.env, "yes")

    assert code == 0, shown
    assert "Do you want to perform these actions?" in shown
    assert "Apply complete: 2 created, 0 replaced, 0 cancelled, 0 deleted." in shown
    assert e2e.live.per_name(root.workspace) == {"a": 1, "b": 1}


def test_destroy_asks_too(e2e: E2E) -> None:
    root = e2e.root("tty-destroy", inline_jobs(["a"]))
    e2e.cli.ok(root, "apply", "--auto-approve")
    e2e.admin.clear_log()

    code, shown = on_terminal(e2e.cli.command(root, "destroy"), e2e.cli.env, "no")

    assert code == 1, shown
    assert "Do you want to destroy every managed job?" in shown
    assert "Error: Destroy cancelled: only 'yes' approves." in shown
    assert e2e.admin.writes() == []


def test_colour_on_a_terminal_unless_no_color(e2e: E2E) -> None:
    root = e2e.root("tty-colour", inline_jobs(["a"]))
    command = e2e.cli.command(root, "plan")
    coloured_env = {k: v for k, v in e2e.cli.env.items() if k != "NO_COLOR"}

    _, coloured = on_terminal(command, coloured_env)
    _, plain = on_terminal(command, e2e.cli.env)  # NO_COLOR=1
    _, flagged = on_terminal([*command[:-1], "--no-color", "plan"], coloured_env)

    assert "\x1b[" in coloured
    assert "\x1b[" not in plain
    assert "\x1b[" not in flagged
    assert "Plan: 1 to create, 0 to replace, 0 to cancel, 0 to delete." in plain
