"""The in-process transport streams both ways; the request log records what clients did."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from emulator_support import FILES, JOBS, chat_request, create_job, unknown_id

from reconciler.emulator import Emulator, Faults, LoggedRequest, ManualClock

MB = 1024 * 1024


def _write_big_jsonl(path: Path, size: int) -> bytes:
    """About ``size`` bytes of valid batch JSONL; returns its sha256."""
    line = (json.dumps(chat_request("x", "word " * 200)) + "\n").encode()
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // len(line) + 1):
            out.write(line)
            digest.update(line)
    return digest.digest()


def test_uploads_and_downloads_stream_in_constant_memory(
    tmp_path: Path, emulator_client: httpx.Client
) -> None:
    big = tmp_path / "big.jsonl"
    digest = _write_big_jsonl(big, 48 * MB)
    size = big.stat().st_size
    tracemalloc.start()
    try:
        with big.open("rb") as stream:
            response = emulator_client.post(
                FILES, files={"file": ("big.jsonl", stream)}, data={"purpose": "batch"}
            )
        _, upload_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert response.status_code == 200, response.text
        file = response.json()
        received = hashlib.sha256()
        with emulator_client.stream("GET", f"{FILES}/{file['id']}/content") as download:
            assert download.headers["content-length"] == str(size)
            for chunk in download.iter_bytes():
                received.update(chunk)
        _, download_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert file["bytes"] == size and file["signature"] == digest.hex()[:16]
    assert received.digest() == digest
    assert upload_peak < 8 * MB, f"upload peaked at {upload_peak / MB:.1f} MB"
    assert download_peak < 8 * MB, f"download peaked at {download_peak / MB:.1f} MB"


def test_a_big_input_file_is_validated_in_constant_memory(
    tmp_path: Path, emulator_client: httpx.Client
) -> None:
    big = tmp_path / "big.jsonl"
    _write_big_jsonl(big, 24 * MB)
    with big.open("rb") as stream:
        file = emulator_client.post(
            FILES, files={"file": ("big.jsonl", stream)}, data={"purpose": "batch"}
        ).json()
    tracemalloc.start()
    try:
        job = create_job(emulator_client, input_files=[file["id"]])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job["total_requests"] == file["num_lines"] > 10_000
    assert peak < 8 * MB, f"create peaked at {peak / MB:.1f} MB"


def test_a_chunked_request_body_reaches_the_app(emulator_client: httpx.Client) -> None:
    body = json.dumps(
        {
            "endpoint": "/v1/chat/completions",
            "model": "mistral-small-latest",
            "requests": [chat_request("0")],
        }
    ).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 7):
            yield body[start : start + 7]

    response = emulator_client.post(
        JOBS, content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text


def test_upload_leftovers_are_cleaned_up(emulator: Emulator, emulator_client: httpx.Client) -> None:
    refused = emulator_client.post(FILES, files={"file": ("a", b"x")}, data={"purpose": "nope"})
    assert refused.status_code == 422
    emulator.set_faults(Faults(rate_5xx=1.0))
    assert emulator_client.post(FILES, files={"file": ("a", b"x")}).status_code >= 500
    assert list((emulator.blob_dir / "tmp").iterdir()) == []


def test_uploads_above_the_limit_are_413(
    emulator: Emulator, emulator_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.emulator.files import Files

    monkeypatch.setattr(Files, "max_file_bytes", 1000)  # stands for 512 MB
    response = emulator_client.post(FILES, files={"file": ("a.jsonl", b"x" * 1001)})
    assert response.status_code == 413
    assert response.json()["object"] == "error"
    assert emulator_client.post(FILES, files={"file": ("a.jsonl", b"x" * 1000)}).status_code == 200
    assert list((emulator.blob_dir / "tmp").iterdir()) == []


# --- request log ----------------------------------------------------------------------------


def test_the_log_records_method_path_query_status_and_time(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    emulator_client.get(JOBS, params={"reconciler.workspace": "w", "status": ["QUEUED", "RUNNING"]})
    emulator_clock.advance(2.5)
    create_job(emulator_client)
    emulator_client.get(f"{JOBS}/{unknown_id()}")
    emulator_client.post(JOBS, json={})
    emulator_client.get(JOBS, headers={"Authorization": ""})
    emulator_client.get("/_emulator/requests")  # admin: not logged
    log = emulator.request_log()
    assert [(e.method, e.path.split("/")[-1], e.status) for e in log] == [
        ("GET", "jobs", 200),
        ("POST", "jobs", 200),
        ("GET", log[2].path.split("/")[-1], 404),
        ("POST", "jobs", 422),
        ("GET", "jobs", 401),
    ]
    assert log[0].query == "reconciler.workspace=w&status=QUEUED&status=RUNNING"
    assert log[0].time == 1_700_000_000.0 and log[1].time == 1_700_000_002.5
    assert not any(entry.dropped for entry in log)


def test_the_log_over_the_admin_api_and_clearing_it(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    emulator_client.get(JOBS, params={"page": "0"})
    listed = emulator_client.get("/_emulator/requests").json()
    assert listed["total"] == 1
    assert LoggedRequest(**listed["data"][0]) == emulator.request_log()[0]
    assert emulator_client.delete("/_emulator/requests").status_code == 200
    assert emulator.request_log() == []
    emulator_client.get(JOBS)
    emulator.clear_request_log()
    assert emulator.request_log() == []


def test_a_plan_like_reader_can_be_proven_read_only(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    """What DESIGN.md's "planning never writes" test relies on: every call is in the log."""
    create_job(emulator_client)
    emulator.clear_request_log()
    for page in range(3):
        emulator_client.get(JOBS, params={"page": str(page), "order_by": "created"})
    assert {entry.method for entry in emulator.request_log()} == {"GET"}
    assert len(emulator.request_log()) == 3


def test_admin_clock_and_settings(emulator: Emulator, emulator_client: httpx.Client) -> None:
    state = emulator_client.post("/_emulator/clock", json={"advance": 30}).json()
    assert state["now"] == 1_700_000_030.0 and state["offset"] == 30.0
    assert emulator.now() == 1_700_000_030.0
    assert emulator_client.post("/_emulator/clock", json={"advance": "x"}).status_code == 400
    updated = emulator_client.put("/_emulator/settings", json={"speed": 8, "hour_length": 2})
    assert (updated.json()["speed"], updated.json()["hour_length"]) == (8.0, 2.0)
    assert emulator.settings().speed == 8.0
    assert emulator_client.put("/_emulator/settings", json={"speed": 0}).status_code == 400
    assert emulator_client.put("/_emulator/settings", json={"sped": 1}).status_code == 400
    assert emulator_client.get("/_emulator/nothing").status_code == 404
    assert emulator.request_log() == []
