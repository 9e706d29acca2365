"""Fixtures shared by the whole suite: the emulator, in-process and served.

- ``emulator``: an in-process :class:`Emulator` on a fresh database, driven by a
  :class:`ManualClock` (``emulator_clock``) so tests choose the instant of every assertion.
- ``emulator_client``: an ``httpx.Client`` talking to it through ``InProcessTransport``
  with the token ``TEST_TOKEN``; ``emulator_client_for(token)`` makes one per user.
- ``served_emulator``: the URL of a real ``reconciler emulator serve --port 0`` subprocess
  on its own database; ``emulator_server`` starts more (with extra CLI flags) and gives
  access to the process and its database.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from reconciler.emulator import Emulator, ManualClock, in_process_client

EMULATOR_EPOCH = 1_700_000_000.0  # the ManualClock's start: 2023-11-14T22:13:20Z
TEST_TOKEN = "test-token"
SERVER_START_TIMEOUT = 20.0


@pytest.fixture
def emulator_clock() -> ManualClock:
    return ManualClock(EMULATOR_EPOCH)


@pytest.fixture
def emulator(tmp_path: Path, emulator_clock: ManualClock) -> Iterator[Emulator]:
    emu = Emulator(tmp_path / "emulator.sqlite3", clock=emulator_clock, seed=0)
    yield emu
    emu.close()


@pytest.fixture
def emulator_client(emulator: Emulator) -> Iterator[httpx.Client]:
    with in_process_client(emulator, api_key=TEST_TOKEN) as client:
        yield client


@pytest.fixture
def emulator_client_for(emulator: Emulator) -> Iterator[Callable[[str], httpx.Client]]:
    """In-process clients with other tokens: each distinct token is one user."""
    clients: list[httpx.Client] = []

    def make(token: str) -> httpx.Client:
        client = in_process_client(emulator, api_key=token)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@dataclass
class EmulatorProcess:
    """A running ``reconciler emulator serve`` subprocess."""

    url: str
    db_path: Path
    process: subprocess.Popen[str]
    stderr_path: Path

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit code (killing it if it does not stop)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return self.process.returncode

    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")


def start_emulator_process(db_path: Path, *args: str, cwd: Path | None = None) -> EmulatorProcess:
    """Start ``reconciler emulator serve --port 0`` and wait for its URL line."""
    stderr_path = db_path.with_name(db_path.name + f".{os.getpid()}.{id(args)}.stderr")
    command = [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", "0"]
    command += ["--db", str(db_path), *args]
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=cwd,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=SERVER_START_TIMEOUT)
    except queue.Empty:
        line = ""
    prefix = "Emulator listening on "
    if not line.startswith(prefix):
        process.kill()
        process.wait()
        stdout.close()
        raise RuntimeError(
            f"emulator did not start: {line!r}\n{stderr_path.read_text(errors='replace')}"
        )
    return EmulatorProcess(line[len(prefix) :].strip(), db_path, process, stderr_path)


@pytest.fixture
def emulator_server(tmp_path: Path) -> Iterator[Callable[..., EmulatorProcess]]:
    """Start served emulators: ``emulator_server("--speed", "50", db_path=...)``."""
    started: list[EmulatorProcess] = []

    def start(*args: str, db_path: Path | None = None) -> EmulatorProcess:
        path = db_path if db_path is not None else tmp_path / f"served-{len(started)}.sqlite3"
        server = start_emulator_process(path, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def served_emulator(emulator_server: Callable[..., EmulatorProcess]) -> str:
    """The base URL of a served emulator (default settings, fresh database)."""
    server: EmulatorProcess = emulator_server()
    return server.url
