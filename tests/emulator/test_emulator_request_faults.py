"""Request-level realism (issue 13): per-request failures that a retry can fix, the API's
request limits at create, and partial results of jobs that end early."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from emulator_support import JOBS, chat_request, create_job, download_lines, get_job, jsonl, upload
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api import MAX_PENDING_REQUESTS, MAX_REQUESTS_PER_JOB
from reconciler.emulator import Emulator, Faults, ManualClock, outcomes


def _requests(n: int, prefix: str = "r") -> list[dict[str, Any]]:
    return [chat_request(f"{prefix}{i}", f"question {i}") for i in range(n)]


def _finish(client: httpx.Client, clock: ManualClock, job: dict[str, Any]) -> dict[str, Any]:
    clock.advance(3600)
    return get_job(client, job["id"])


def _outcomes(client: httpx.Client, job: dict[str, Any]) -> dict[str, int]:
    """custom_id -> status code, over the job's output and error files."""
    seen: dict[str, int] = {}
    for file_id in (job["output_file"], job["error_file"]):
        if file_id is not None:
            for line in download_lines(client, file_id):
                assert line["custom_id"] not in seen  # one line per request
                seen[line["custom_id"]] = line["response"]["status_code"]
    return seen


def test_failed_requests_land_in_the_error_file_and_retries_can_succeed(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    emulator.set_faults(Faults(fail_requests=0.3, fail_requests_permanent=0.05))
    requests = _requests(200)
    first = _finish(emulator_client, emulator_clock, create_job(emulator_client, requests=requests))
    results = _outcomes(emulator_client, first)
    assert len(results) == 200
    assert set(results.values()) == {200, 400, 429, 500}
    failed = [cid for cid, status in results.items() if status != 200]
    assert first["failed_requests"] == len(failed) and first["succeeded_requests"] == 200 - len(
        failed
    )
    lines = download_lines(emulator_client, first["error_file"])
    kinds = {line["response"]["status_code"]: line["response"]["body"]["type"] for line in lines}
    assert kinds == {
        400: "invalid_request_error",
        429: "rate_limit_error",
        500: "internal_server_error",
    }
    # Retry only the failed ones, as the reconciler does, until nothing transient is left.
    permanent = {cid for cid, status in results.items() if status == 400}
    pending = [r for r in requests if results[r["custom_id"]] in (429, 500)]
    for _attempt in range(10):
        if not pending:
            break
        retry = _finish(
            emulator_client, emulator_clock, create_job(emulator_client, requests=pending)
        )
        again = _outcomes(emulator_client, retry)
        assert set(again) == {r["custom_id"] for r in pending}
        assert not {cid for cid, status in again.items() if status == 400} - permanent
        pending = [r for r in pending if again[r["custom_id"]] != 200]
    assert pending == []
    # Permanent failures stay failed, attempt after attempt.
    stuck = [r for r in requests if r["custom_id"] in permanent]
    if stuck:
        retry = _finish(
            emulator_client, emulator_clock, create_job(emulator_client, requests=stuck)
        )
        assert set(_outcomes(emulator_client, retry).values()) == {400}


def test_decisions_replay_in_a_fresh_database(tmp_path: Any, emulator_clock: ManualClock) -> None:
    """Deterministic per custom_id, body and attempt: the same history gives the same
    failures in any database (and another body is another request)."""

    def history(name: str) -> list[dict[str, int]]:
        emu = Emulator(tmp_path / f"{name}.sqlite3", clock=emulator_clock)
        emu.set_faults(Faults(fail_requests=0.5))
        seen = []
        from reconciler.emulator import in_process_client

        with in_process_client(emu) as client:
            for _ in range(3):
                job = _finish(client, emulator_clock, create_job(client, requests=_requests(40)))
                seen.append(_outcomes(client, job))
        emu.close()
        return seen

    one, two = history("a"), history("b")
    assert one == two
    assert one[0] != one[1]  # attempt 2 is drawn afresh


def test_attempts_are_counted_per_custom_id_and_body(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    emulator.set_faults(Faults(fail_requests=0.5))
    body = {"messages": [{"role": "user", "content": "same"}]}
    request = {"custom_id": "x", "body": body}
    statuses = []
    for _ in range(30):
        job = _finish(
            emulator_client, emulator_clock, create_job(emulator_client, requests=[request])
        )
        statuses.append(_outcomes(emulator_client, job)["x"])
    key = outcomes.request_key("x", body)
    seed = emulator.settings().seed  # the fixture's --seed 0: part of every draw
    expected = [
        outcomes.decide(key, n, transient=0.5, permanent=0.0, seed=seed) or 200
        for n in range(1, 31)
    ]
    assert statuses == expected
    assert 200 in statuses and (429 in statuses or 500 in statuses)


@settings(max_examples=200, deadline=None)
@given(
    custom_id=st.text(max_size=20),
    text=st.text(max_size=50),
    transient=st.floats(0, 1),
    permanent=st.floats(0, 1),
    attempt=st.integers(1, 1000),
)
def test_decide_is_a_pure_function_of_its_inputs(
    custom_id: str, text: str, transient: float, permanent: float, attempt: int
) -> None:
    key = outcomes.request_key(custom_id, {"messages": [{"role": "user", "content": text}]})
    first = outcomes.decide(key, attempt, transient=transient, permanent=permanent)
    assert first == outcomes.decide(key, attempt, transient=transient, permanent=permanent)
    assert first in (None, 400, 429, 500)
    if permanent == 0:
        assert first != 400
    if transient == 0:
        assert first in (None, 400)
    if first == 400:  # permanent: every attempt
        assert outcomes.decide(key, attempt + 1, transient=transient, permanent=permanent) == 400
    if transient == 1 and first != 400:
        assert first in (429, 500)


def test_fractions_are_close_to_what_was_asked() -> None:
    keys = [outcomes.request_key(str(i), {}) for i in range(20_000)]
    failed = [outcomes.decide(k, 1, transient=0.1, permanent=0.02) for k in keys]
    assert abs(failed.count(400) / len(keys) - 0.02) < 0.005
    transient = (failed.count(429) + failed.count(500)) / len(keys)
    assert abs(transient - 0.1 * 0.98) < 0.01


# --- limits -----------------------------------------------------------------------------------


def _refusal(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["object"] == "error" and body["type"] == "invalid_request_error"
    message: str = body["message"]
    return message


def test_the_defaults_are_the_apis_limits(emulator: Emulator) -> None:
    faults = emulator.faults()
    assert (faults.max_requests_per_job, faults.max_pending_requests) == (100_000, 1_000_000)
    assert (MAX_REQUESTS_PER_JOB, MAX_PENDING_REQUESTS) == (100_000, 1_000_000)


def test_requests_per_job_are_limited_at_create(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    emulator.set_faults(Faults(max_requests_per_job=5))
    body = {"endpoint": "/v1/chat/completions", "model": "mistral-small-latest"}
    message = _refusal(emulator_client.post(JOBS, json={**body, "requests": _requests(6)}))
    assert "6" in message and "at most 5" in message
    file_id = upload(emulator_client, jsonl(_requests(50)))["id"]
    message = _refusal(emulator_client.post(JOBS, json={**body, "input_files": [file_id]}))
    assert "at most 5" in message
    assert emulator_client.get(JOBS).json()["total"] == 0
    create_job(emulator_client, requests=_requests(5))


def test_pending_requests_are_limited_workspace_wide(
    emulator: Emulator,
    emulator_client_for: Callable[[str], httpx.Client],
    emulator_clock: ManualClock,
) -> None:
    alice, bob = emulator_client_for("alice"), emulator_client_for("bob")
    emulator.set_faults(Faults(max_pending_requests=10))
    create_job(alice, requests=_requests(6))
    body = {"endpoint": "/v1/chat/completions", "model": "mistral-small-latest"}
    message = _refusal(bob.post(JOBS, json={**body, "requests": _requests(5)}))
    assert "6" in message and "at most 10" in message  # alice's count against bob
    create_job(bob, requests=_requests(4))  # exactly at the cap
    emulator_clock.advance(3600)  # both finished: nothing pending
    create_job(bob, requests=_requests(10))


def test_cancelled_jobs_do_not_count_as_pending(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    emulator.set_faults(Faults(max_pending_requests=10))
    job = create_job(emulator_client, requests=_requests(10))
    assert emulator_client.post(f"{JOBS}/{job['id']}/cancel").status_code == 200
    create_job(emulator_client, requests=_requests(10))


def test_limits_and_request_faults_are_set_and_kept_through_the_admin_api(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    admin = emulator_client
    settings_ = {
        "fail_requests": 0.25,
        "fail_requests_permanent": 0.5,
        "max_requests_per_job": 7,
        "max_pending_requests": 9,
    }
    put = admin.put("/_emulator/faults", json=settings_)
    assert put.status_code == 200 and {k: put.json()[k] for k in settings_} == settings_
    reopened = Emulator(emulator.db_path, clock=emulator.clock)  # persisted in the database
    assert reopened.faults() == Faults(**settings_)  # type: ignore[arg-type]
    reopened.close()
    for bad in (
        {"fail_requests": 1.5},
        {"max_requests_per_job": 0},
        {"max_pending_requests": 1.5},
        {"fail_requests_permanent": "x"},
    ):
        assert admin.put("/_emulator/faults", json=bad).status_code == 400


# --- jobs that end early keep what they did ------------------------------------------------------


@pytest.mark.parametrize("ending", ["cancel", "timeout"])
def test_jobs_that_end_early_keep_the_results_done_so_far(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock, ending: str
) -> None:
    emulator.set_hour_length(2.0)  # a 1-hour timeout is 2 s: 100 requests take 1 + 2 s
    requests = _requests(100)
    job = create_job(emulator_client, requests=requests, timeout_hours=1)
    emulator_clock.advance(1.0 + 0.5)  # queued 1 s, then about 25 requests done
    if ending == "cancel":
        assert emulator_client.post(f"{JOBS}/{job['id']}/cancel").status_code == 200
    emulator_clock.advance(3600)
    done = get_job(emulator_client, job["id"])
    assert done["status"] == ("CANCELLED" if ending == "cancel" else "TIMEOUT_EXCEEDED")
    assert 0 < done["completed_requests"] < 100
    results = _outcomes(emulator_client, done)
    assert len(results) == done["completed_requests"]
    assert set(results) < {r["custom_id"] for r in requests}  # the others: no result at all
    inline = get_job(emulator_client, job["id"], inline="true")["outputs"]
    assert sorted(line["custom_id"] for line in inline) == sorted(results)


def test_a_database_of_the_previous_schema_opens(tmp_path: Any) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite3"
    Emulator(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("DROP TABLE request_attempts")
        conn.execute("DROP TABLE job_failures")
        conn.execute("PRAGMA user_version = 1")
    with Emulator(path) as emu:
        assert json.dumps(emu.faults().to_json())
        with sqlite3.connect(path) as conn:
            names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert {"request_attempts", "job_failures"} <= names
