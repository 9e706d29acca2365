"""``reconciler emulator serve`` as a user runs it: a subprocess on 127.0.0.1."""

from __future__ import annotations

import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from emulator_support import JOBS, create_job

from reconciler.cli import cli

AUTH = {"Authorization": "Bearer t"}


def client(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers=AUTH, timeout=10)


def test_prints_one_url_line_binds_loopback_and_stops_cleanly_on_sigterm(
    emulator_server: Callable[..., Any],
) -> None:
    first, second = emulator_server(), emulator_server()
    pattern = r"http://127\.0\.0\.1:(\d+)"
    ports = {re.fullmatch(pattern, s.url).group(1) for s in (first, second)}  # type: ignore[union-attr]
    assert len(ports) == 2 and "0" not in ports  # --port 0: two free ports
    with client(first.url) as http:
        assert http.get(JOBS).status_code == 200
    assert first.stop() == 0
    assert "Emulator stopped." in first.stderr()
    assert "Traceback" not in first.stderr()
    with pytest.raises(httpx.ConnectError), client(first.url) as http:
        http.get(JOBS)


def test_ctrl_c_stops_it_cleanly(emulator_server: Callable[..., Any]) -> None:
    server = emulator_server()
    server.process.send_signal(signal.SIGINT)
    assert server.process.wait(timeout=10) == 0
    assert "Emulator stopped." in server.stderr()


def test_fault_flags_apply(emulator_server: Callable[..., Any]) -> None:
    limited = emulator_server("--rate-429", "1")
    with client(limited.url) as http:
        response = http.get(JOBS)
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    dropping = emulator_server("--drop-creates", "1", "--seed", "3")
    with client(dropping.url) as http:
        with pytest.raises(httpx.RemoteProtocolError):
            create_job(http)
        assert http.get(JOBS).json()["total"] == 1  # committed all the same
        faults = http.get(f"{dropping.url}/_emulator/faults").json()
    assert faults["drop_creates"] == 1.0
    failing = emulator_server("--rate-5xx", "1", "--latency", "0.05")
    with client(failing.url) as http:
        assert http.get(JOBS).status_code in (500, 502, 503)


def test_flags_set_at_start_replace_stored_settings(
    tmp_path: Path, emulator_server: Callable[..., Any]
) -> None:
    db = tmp_path / "kept.sqlite3"
    first = emulator_server("--rate-429", "1", db_path=db)
    first.stop()
    second = emulator_server("--api-key", "k", "--hour-length", "0.5", db_path=db)
    with httpx.Client(base_url=second.url, headers={"Authorization": "Bearer k"}) as http:
        assert http.get(JOBS).status_code == 200
        job = create_job(http, timeout_hours=1)  # 1 "hour" = 0.5 s < the 1 s queue
        http.post(f"{second.url}/_emulator/clock", json={"advance": 1}).raise_for_status()
        assert http.get(f"{JOBS}/{job['id']}").json()["status"] == "TIMEOUT_EXCEEDED"
    with client(second.url) as http:
        assert http.get(JOBS).status_code == 401  # only k is accepted


def _start_without_db(cwd: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "reconciler", *args, "emulator", "serve", "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    stdout = process.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return process, lines.get(timeout=20)
    except queue.Empty:
        process.kill()
        process.wait()
        stdout.close()
        raise


def test_default_database_is_under_the_config_root(tmp_path: Path) -> None:
    root = tmp_path / "project"
    root.mkdir()
    process, line = _start_without_db(tmp_path, "-C", "project")
    try:
        assert line.startswith("Emulator listening on http://127.0.0.1:")
        assert (root / ".reconciler" / "emulator.sqlite3").exists()
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0
        assert process.stdout is not None
        process.stdout.close()


@pytest.mark.parametrize(
    "args",
    [
        ["--rate-429", "1.5"],
        ["--rate-5xx", "-0.1"],
        ["--drop-creates", "2"],
        ["--speed", "0"],
        ["--port", "70000"],
        ["--latency", "-1"],
    ],
)
def test_bad_flags_are_usage_errors(args: list[str]) -> None:
    result = CliRunner().invoke(cli, ["emulator", "serve", *args])
    assert result.exit_code == 1, result.output  # usage errors exit 1 (issue 11)


def test_help_lists_every_flag() -> None:
    result = CliRunner().invoke(cli, ["emulator", "serve", "--help"])
    assert result.exit_code == 0
    for flag in (
        "--host", "--port", "--db", "--speed", "--api-key", "--latency", "--rate-429",
        "--rate-5xx", "--drop-creates", "--rate-limit", "--seed", "--hour-length",
    ):  # fmt: skip
        assert flag in result.output


def test_only_loopback_binds_go_without_a_warning() -> None:
    from reconciler.cli.emulator import _is_loopback

    assert all(map(_is_loopback, ["127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost"]))
    assert not any(map(_is_loopback, ["0.0.0.0", "192.168.1.2", "::", "example.com"]))
