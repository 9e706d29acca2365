"""Listing jobs and files: every filter, ordering, paging, and efficiency at 20,000 jobs."""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from emulator_support import FILES, JOBS, chat_request, create_job, jsonl, upload

from reconciler.emulator import Emulator, ManualClock

WS = "reconciler.workspace"


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [job["id"] for job in response.json()["data"]]


def test_metadata_filters_in_sdk_form_and_json_form(emulator_client: httpx.Client) -> None:
    a = create_job(emulator_client, metadata={WS: "evals", "team": "x y&z"})
    b = create_job(emulator_client, metadata={WS: "evals", "team": "other"})
    create_job(emulator_client, metadata={WS: "prod", "team": "x y&z"})
    create_job(emulator_client)  # no metadata at all
    # How mistralai 3.7 sends metadata={...}: one query parameter per key.
    assert ids(emulator_client.get(JOBS, params={WS: "evals", "order_by": "created"})) == [
        a["id"],
        b["id"],
    ]
    both = emulator_client.get(JOBS, params={WS: "evals", "team": "x y&z"})
    assert ids(both) == [a["id"]] and both.json()["total"] == 1
    as_json = emulator_client.get(
        JOBS, params={"metadata": json.dumps({WS: "evals", "team": "x y&z"})}
    )
    assert ids(as_json) == [a["id"]]
    assert ids(emulator_client.get(JOBS, params={WS: "nobody"})) == []
    assert emulator_client.get(JOBS, params={WS: "nobody"}).json()["total"] == 0


def test_the_sdk_default_parameters_are_not_metadata(emulator_client: httpx.Client) -> None:
    job = create_job(emulator_client)
    query = "page=0&page_size=100&created_by_me=false&order_by=-created"
    assert ids(emulator_client.get(f"{JOBS}?{query}")) == [job["id"]]


def test_status_filter_is_repeatable_and_follows_the_clock(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    done = create_job(emulator_client)
    emulator_clock.advance(5)
    queued = create_job(emulator_client)
    cancelling = create_job(emulator_client)
    emulator_client.post(f"{JOBS}/{cancelling['id']}/cancel").raise_for_status()

    def with_status(*statuses: str) -> set[str]:
        return set(ids(emulator_client.get(JOBS, params={"status": list(statuses)})))

    assert with_status("SUCCESS") == {done["id"]}
    assert with_status("QUEUED") == {queued["id"]}
    assert with_status("QUEUED", "CANCELLATION_REQUESTED") == {queued["id"], cancelling["id"]}
    emulator_clock.advance(1.2)
    assert with_status("SUCCESS") == {done["id"], queued["id"]}
    assert with_status("CANCELLED") == {cancelling["id"]}
    assert emulator_client.get(JOBS, params={"status": "CANCELLED"}).json()["total"] == 1


def test_model_agent_and_created_after_filters(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    small = create_job(emulator_client, model="mistral-small-latest")
    emulator_clock.advance(10)
    medium = create_job(emulator_client, model="mistral-medium-latest")
    agent = create_job(emulator_client, model=None, agent_id="ag_1")
    assert ids(emulator_client.get(JOBS, params={"model": "mistral-small-latest"})) == [small["id"]]
    assert ids(emulator_client.get(JOBS, params={"agent_id": "ag_1"})) == [agent["id"]]
    cut = datetime.fromtimestamp(1_700_000_005, UTC)
    for text in (cut.isoformat(), cut.isoformat().replace("+00:00", "Z"), "2023-11-14T22:13:25"):
        after = ids(
            emulator_client.get(JOBS, params={"created_after": text, "order_by": "created"})
        )
        assert after == [medium["id"], agent["id"]], text


def test_order_and_paging_are_stable_within_one_second(emulator_client: httpx.Client) -> None:
    """The clock does not move: creation time ties are broken by insertion order."""
    created = [create_job(emulator_client, metadata={WS: "w"})["id"] for _ in range(7)]
    for params in ({}, {WS: "w"}):
        pages = [
            emulator_client.get(
                JOBS, params={**params, "order_by": "created", "page": p, "page_size": 3}
            )
            for p in range(4)
        ]
        assert [i for page in pages for i in ids(page)] == created
        assert {page.json()["total"] for page in pages} == {7}
        newest_first = ids(emulator_client.get(JOBS, params={**params, "page_size": 100}))
        assert newest_first == created[::-1]  # -created is the default


def test_deleted_jobs_leave_listing_and_count(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    jobs = [create_job(emulator_client, metadata={WS: "w"}) for _ in range(3)]
    emulator_clock.advance(5)
    emulator_client.delete(f"{JOBS}/{jobs[1]['id']}").raise_for_status()
    for params in ({}, {WS: "w"}, {WS: "w", "status": "SUCCESS"}):
        listed = emulator_client.get(JOBS, params={**params, "order_by": "created"})
        assert ids(listed) == [jobs[0]["id"], jobs[2]["id"]]
        assert listed.json()["total"] == 2


def test_file_listing_filters_and_paging(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    a = upload(emulator_client, jsonl([chat_request("0")]), filename="cheese-sha256-abc.jsonl")
    b = upload(emulator_client, b"x", filename="Wine_100%.txt", purpose="fine-tune")
    job = create_job(emulator_client, input_files=[a["id"]])
    emulator_clock.advance(5)
    output = emulator_client.get(f"{JOBS}/{job['id']}").json()["output_file"]

    def listed(**params: str | list[str]) -> list[str]:
        response = emulator_client.get(FILES, params=params)
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["data"]]

    assert listed(search="sha256-abc") == [a["id"]]
    assert listed(search="wine_100%") == [b["id"]]  # case-insensitive, % and _ are literal
    assert listed(search="cheese_sha") == []  # "_" is no wildcard: the file has "-"
    assert listed(purpose="fine-tune") == [b["id"]]
    assert listed(sample_type="batch_result") == [output]
    assert set(listed(sample_type=["batch_result", "batch_request"])) == {output, a["id"]}
    assert set(listed(source="upload")) == {a["id"], b["id"]}
    assert listed(source="mistral") == [output]
    assert listed(page_size="1", page="0") == [output]  # newest first
    assert listed(page_size="1", page="2") == [a["id"]]
    no_total = emulator_client.get(FILES, params={"include_total": "false"}).json()
    assert no_total["total"] is None and len(no_total["data"]) == 3
    assert emulator_client.get(FILES, params={"sample_type": "nope"}).status_code == 422


def test_expired_files_disappear(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    file = upload(emulator_client, b"{}\n", expiry="1")
    assert file["expires_at"] == 1_700_000_000 + 3600
    emulator_clock.advance(3599)
    assert emulator_client.get(f"{FILES}/{file['id']}").status_code == 200
    emulator_clock.advance(1)
    assert emulator_client.get(f"{FILES}/{file['id']}").status_code == 404
    assert emulator_client.get(FILES).json()["total"] == 0


# --- efficiency ------------------------------------------------------------------------------


def _plan(conn: sqlite3.Connection, sql: str, params: dict[str, object]) -> str:
    return " | ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))


def _seed_jobs(emulator: Emulator, managed: int, foreign: int) -> None:
    """Insert jobs straight into the database: creating 20,000 through HTTP takes too long
    for a unit test, and the listing is what is measured here."""
    rows, meta = [], []
    base = 1_600_000_000.0
    for seq in range(1, managed + foreign + 1):
        workspace = "mine" if seq % 2 == 0 and seq // 2 <= managed else f"other-{seq % 7}"
        created = base + seq // 3  # three jobs per second: ties everywhere
        rows.append(
            (seq, str(uuid.uuid4()), "o", "/v1/chat/completions", "m", None,
             json.dumps({WS: workspace, "reconciler.job": f"j{seq}"}), "[]", "[]", 24, 1, 0,
             created, created + 1, created + 1.02, created + 1.02, "SUCCESS",
             str(uuid.uuid4()), str(uuid.uuid4()))
        )  # fmt: skip
        meta += [(WS, workspace, created, seq), ("reconciler.job", f"j{seq}", created, seq)]
    conn = sqlite3.connect(emulator.db_path)
    try:
        with conn:
            conn.executemany(
                "INSERT INTO jobs (seq, id, owner, endpoint, model, agent_id, metadata,"
                " input_files, sources, timeout_hours, total, bad, created_at, start_at,"
                " run_end_at, end_at, final_status, output_file, error_file)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            conn.executemany("INSERT INTO job_meta VALUES (?, ?, ?, ?)", meta)
    finally:
        conn.close()


def test_tag_filter_uses_the_index_without_sorting(emulator: Emulator) -> None:
    """The query shapes of jobs.py's listing, as SQLite plans them: index walks, no sort."""
    conn = sqlite3.connect(emulator.db_path)
    params = {"key": WS, "value": "x", "limit": 100, "offset": 0, "now": 0.0}
    try:
        page = _plan(
            conn,
            "SELECT job_seq, created_at FROM job_meta WHERE key = :key AND value = :value"
            " ORDER BY created_at DESC, job_seq DESC LIMIT :limit OFFSET :offset",
            params,
        )
        count = _plan(
            conn, "SELECT COUNT(*) FROM job_meta WHERE key = :key AND value = :value", params
        )
        filtered = _plan(
            conn,
            "SELECT j.* FROM job_meta m JOIN jobs j ON j.seq = m.job_seq"
            " WHERE m.key = :key AND m.value = :value AND j.deleted = 0 AND j.model = 'm'"
            " ORDER BY m.created_at ASC, m.job_seq ASC LIMIT :limit OFFSET :offset",
            params,
        )
        unfiltered = _plan(
            conn,
            "SELECT j.* FROM jobs j WHERE j.deleted = 0"
            " ORDER BY j.created_at DESC, j.seq DESC LIMIT 100 OFFSET 0",
            {},
        )
    finally:
        conn.close()
    by_tag = "SEARCH job_meta USING PRIMARY KEY (key=? AND value=?)"
    assert page == count == by_tag
    assert filtered == (
        "SEARCH m USING PRIMARY KEY (key=? AND value=?) | "
        "SEARCH j USING INTEGER PRIMARY KEY (rowid=?)"
    )
    assert unfiltered == "SCAN j USING INDEX jobs_by_created"


@pytest.mark.parametrize("order_by", ["created", "-created"])
def test_listing_10k_managed_among_20k_jobs_is_fast_and_exact(
    emulator: Emulator, emulator_client: httpx.Client, order_by: str
) -> None:
    _seed_jobs(emulator, managed=10_000, foreign=10_000)
    seen: list[str] = []
    started = time.perf_counter()
    for page in range(101):
        response = emulator_client.get(
            JOBS,
            params={WS: "mine", "page": page, "page_size": 100, "order_by": order_by,
                    "created_by_me": "false"},
        )  # fmt: skip
        body = response.json()
        assert body["total"] == 10_000
        seen += [job["id"] for job in body["data"]]
    elapsed = time.perf_counter() - started
    assert len(seen) == len(set(seen)) == 10_000
    # 101 calls; a per-row scan of 20,000 jobs per call would take far longer.
    assert elapsed < 8.0, f"{elapsed:.2f}s to list 10,000 managed jobs"
    created = [emulator_client.get(f"{JOBS}/{i}").json()["created_at"] for i in seen[::997]]
    assert created == sorted(created, reverse=order_by == "-created")
