"""Fault injection: latency, 429 + Retry-After, 5xx, commit-then-drop, rate limit, seeds."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from emulator_support import JOBS, create_job

from reconciler.emulator import (
    Emulator,
    Faults,
    ManualClock,
    ServedEmulator,
    in_process_client,
)


def test_latency_delays_api_requests_but_not_admin(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    emulator.set_faults(Faults(latency=0.2))
    started = time.perf_counter()
    assert emulator_client.get(JOBS).status_code == 200
    assert time.perf_counter() - started >= 0.2
    started = time.perf_counter()
    assert emulator_client.get("/_emulator/faults").status_code == 200
    assert time.perf_counter() - started < 0.15


def test_429_carries_retry_after_and_the_rate_limit_body(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    emulator.set_faults(Faults(rate_429=1.0, retry_after=7))
    response = emulator_client.post(JOBS, json={})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    body = response.json()
    assert body["object"] == "error" and body["type"] == "rate_limit_error" and body["message"]
    emulator.set_faults(Faults())
    assert emulator_client.get(JOBS).json()["total"] == 0


def test_5xx_are_500_502_503_and_commit_nothing(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    emulator.set_faults(Faults(rate_5xx=1.0))
    statuses = {
        emulator_client.post(JOBS, json={"endpoint": "/v1/embeddings"}).status_code
        for _ in range(40)
    }
    assert statuses == {500, 502, 503}
    emulator.set_faults(Faults())
    assert emulator_client.get(JOBS).json()["total"] == 0


def test_fractions_are_roughly_honoured(emulator: Emulator, emulator_client: httpx.Client) -> None:
    emulator.set_faults(Faults(rate_429=0.3, rate_5xx=0.2))
    statuses = [emulator_client.get(JOBS).status_code for _ in range(400)]
    assert 80 <= statuses.count(429) <= 160  # 30 %
    server_errors = sum(1 for s in statuses if s >= 500)
    assert 30 <= server_errors <= 100  # 20 % of the remaining 70 %
    assert statuses.count(200) == 400 - statuses.count(429) - server_errors


def _statuses(db: Path, seed: int) -> list[int]:
    emu = Emulator(db, clock=ManualClock(), seed=seed, faults=Faults(rate_429=0.5))
    with emu, in_process_client(emu) as client:
        return [client.get(JOBS).status_code for _ in range(40)]


def test_seeded_faults_replay_exactly(tmp_path: Path) -> None:
    first = _statuses(tmp_path / "a.sqlite3", seed=42)
    assert first == _statuses(tmp_path / "b.sqlite3", seed=42)
    assert first != _statuses(tmp_path / "c.sqlite3", seed=43)
    assert 429 in first and 200 in first


def test_drop_after_commit_in_process(emulator: Emulator, emulator_client: httpx.Client) -> None:
    emulator.set_faults(Faults(drop_creates=1.0))
    assert emulator_client.get(JOBS).status_code == 200  # only creates are dropped
    with pytest.raises(httpx.RemoteProtocolError):
        create_job(emulator_client, metadata={"reconciler.create-id": "c-1"})
    emulator.set_faults(Faults())
    # The client saw no answer, yet the job exists: the outcome was unknown, not failure.
    listed = emulator_client.get(JOBS, params={"reconciler.create-id": "c-1"}).json()
    assert listed["total"] == 1
    dropped = [entry for entry in emulator.request_log() if entry.dropped]
    assert [(e.method, e.path, e.status) for e in dropped] == [("POST", JOBS, 200)]


def test_invalid_creates_are_answered_even_when_dropping(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    """Nothing committed, nothing to lose: only successful creates are dropped."""
    emulator.set_faults(Faults(drop_creates=1.0))
    assert emulator_client.post(JOBS, json={}).status_code == 422


def test_drop_after_commit_over_a_real_socket(tmp_path: Path) -> None:
    emu = Emulator(tmp_path / "e.sqlite3", faults=Faults(drop_creates=1.0))
    headers = {"Authorization": "Bearer t"}
    with (
        emu,
        ServedEmulator(emu) as served,
        httpx.Client(base_url=served.url, headers=headers, timeout=10) as client,
    ):
        assert client.get(JOBS).status_code == 200
        started = time.perf_counter()
        with pytest.raises(httpx.RemoteProtocolError):
            create_job(client)
        assert time.perf_counter() - started < 5  # closed at once, not a timeout
        emu.set_faults(Faults())
        assert client.get(JOBS).json()["total"] == 1


def test_rate_limit_is_a_token_bucket(emulator: Emulator, emulator_client: httpx.Client) -> None:
    emulator.set_faults(Faults(rate_limit=5))
    responses = [emulator_client.get(JOBS) for _ in range(20)]
    limited = [r for r in responses if r.status_code == 429]
    assert 13 <= len(limited) <= 15  # a burst of 5 (plus what refills meanwhile)
    assert all(int(r.headers["Retry-After"]) >= 1 for r in limited)
    assert limited[0].json()["type"] == "rate_limit_error"
    time.sleep(0.45)  # two tokens back at 5/s
    assert emulator_client.get(JOBS).status_code == 200


def test_faults_are_persisted_and_shared_with_other_instances(
    emulator: Emulator, emulator_clock: ManualClock
) -> None:
    other = Emulator(emulator.db_path, clock=emulator_clock)
    try:
        emulator.set_faults(Faults(rate_429=1.0))
        assert other.faults() == Faults(rate_429=1.0)
        with in_process_client(other) as client:
            assert client.get(JOBS).status_code == 429
    finally:
        other.close()


def test_admin_api_sets_faults_and_is_never_faulted_or_logged(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    response = emulator_client.put(
        "/_emulator/faults", json={"rate_5xx": 1.0, "latency": 0.0, "retry_after": 3}
    )
    assert response.status_code == 200
    assert emulator.faults() == Faults(rate_5xx=1.0, retry_after=3)
    assert emulator_client.get("/_emulator/faults").json()["rate_5xx"] == 1.0
    assert emulator_client.get(JOBS).status_code >= 500
    bad = emulator_client.put("/_emulator/faults", json={"rate_5xxx": 1.0})
    assert bad.status_code == 400 and "rate_5xxx" in bad.json()["message"]
    assert emulator_client.put("/_emulator/faults", json={"rate_429": 2}).status_code == 400
    assert [entry.path for entry in emulator.request_log()] == [JOBS]


def test_faults_validate_their_values() -> None:
    for bad in ({"rate_429": -0.1}, {"rate_5xx": 1.5}, {"latency": -1}, {"rate_limit": 0}):
        with pytest.raises(ValueError):
            Faults(**bad)
