"""Emulator.seed_jobs: the benchmarks' bulk seeding writes exactly what API creates write."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest
from emulator_support import CHAT, JOBS, bad_chat_request, chat_request, create_job, jsonl, upload

from reconciler.emulator import Emulator, ManualClock
from reconciler.emulator.errors import ApiError

# Columns that differ between two creates of one body by construction.
_UNIQUE = {"seq", "id", "output_file", "error_file", "sources"}


def _rows(emulator: Emulator, table: str, order: str) -> list[dict[str, Any]]:
    with sqlite3.connect(emulator.db_path) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute(f"SELECT * FROM {table} ORDER BY {order}")]


def test_seeded_jobs_are_the_rows_api_creates_write(
    emulator: Emulator, emulator_client: httpx.Client
) -> None:
    file_id = upload(emulator_client, jsonl([chat_request("a"), bad_chat_request("b")]))["id"]
    bodies: list[dict[str, Any]] = [
        {
            "endpoint": CHAT,
            "model": "mistral-small-latest",
            "requests": [chat_request("0")],
            "metadata": {"k": "v"},
        },
        {
            "endpoint": CHAT,
            "model": "mistral-small-latest",
            "input_files": [file_id],
            "timeout_hours": 2,
        },
        {"endpoint": CHAT, "model": "mistral-small-latest", "requests": [bad_chat_request("0")]},
    ]
    via_api = [create_job(emulator_client, **body) for body in bodies]
    seeded = emulator.seed_jobs(bodies, api_key="test-token")

    def strip(job: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in job.items() if k not in ("id", "output_file", "error_file")}

    assert [strip(j) for j in seeded] == [strip(j) for j in via_api]
    jobs = _rows(emulator, "jobs", "seq")
    assert [{k: v for k, v in r.items() if k not in _UNIQUE} for r in jobs[3:]] == [
        {k: v for k, v in r.items() if k not in _UNIQUE} for r in jobs[:3]
    ]
    meta = _rows(emulator, "job_meta", "job_seq, key")
    assert [(m["key"], m["value"]) for m in meta if m["job_seq"] > 3] == [
        (m["key"], m["value"]) for m in meta if m["job_seq"] <= 3
    ]
    files = _rows(emulator, "files", "seq")
    results = [f for f in files if f["job_seq"] is not None]
    assert [(f["kind"], f["sample_type"]) for f in results[len(results) // 2 :]] == [
        (f["kind"], f["sample_type"]) for f in results[: len(results) // 2]
    ]
    requests = _rows(emulator, "job_requests", "job_seq")
    assert [r["body"] for r in requests[len(requests) // 2 :]] == [
        r["body"] for r in requests[: len(requests) // 2]
    ]
    # Seeding is not traffic: the request log holds the API calls only.
    assert [(e.method, e.path) for e in emulator.request_log()][-3:] == [("POST", JOBS)] * 3


def test_seeding_at_a_past_instant_gives_jobs_that_already_ran(
    emulator: Emulator, emulator_clock: ManualClock, emulator_client: httpx.Client
) -> None:
    body = {"endpoint": CHAT, "model": "mistral-small-latest", "requests": [chat_request("0")]}
    (done,) = emulator.seed_jobs([body], api_key="t", at=emulator_clock.now() - 3600)
    (fresh,) = emulator.seed_jobs([body], api_key="t")
    assert done["created_at"] == int(emulator_clock.now() - 3600)
    status = {j["id"]: j["status"] for j in emulator_client.get(JOBS).json()["data"]}
    assert (status[done["id"]], status[fresh["id"]]) == ("SUCCESS", "QUEUED")


def test_seeding_is_all_or_nothing(emulator: Emulator, emulator_client: httpx.Client) -> None:
    good = {"endpoint": CHAT, "model": "mistral-small-latest", "requests": [chat_request("0")]}
    with pytest.raises(ApiError) as raised:
        emulator.seed_jobs([good, {"endpoint": CHAT}], api_key="t")
    assert raised.value.status == 422
    assert emulator_client.get(JOBS).json()["total"] == 0
    # The store is usable afterwards: the failed batch released its transaction.
    assert len(emulator.seed_jobs([good], api_key="t")) == 1
