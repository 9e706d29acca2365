"""Config tests never reach the network: any socket connect fails the test."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.helpers import Workdir


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Point the API at an unreachable loopback port and make every connect fail; the
    test fails afterwards if anything tried."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object, *args: object) -> None:
        attempts.append(address)
        raise OSError("network disabled in config tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setenv("MISTRAL_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("MISTRAL_API_KEY", "config-tests-key-never-sent")
    yield attempts
    assert attempts == [], f"validation tried to connect to {attempts}"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workdir:
    root = tmp_path / "repo"
    root.mkdir()
    monkeypatch.chdir(root)
    return Workdir(root)
