"""Job lifecycle under a ManualClock: each state and count at chosen instants.

At speed 1 (the default) a job waits 1 s in QUEUED, then runs 50 requests per second; a
cancel takes 0.5 s. The emulator fixture starts its clock at EMULATOR_EPOCH.
"""

from __future__ import annotations

import sqlite3
import threading

import httpx
from emulator_support import (
    FILES,
    JOBS,
    bad_chat_request,
    chat_request,
    create_job,
    download_lines,
    get_job,
    jsonl,
    upload,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.api import Status
from reconciler.emulator import Emulator, ManualClock, in_process_client
from reconciler.emulator.lifecycle import STATUS_SQL, Timeline

EPOCH = 1_700_000_000


def hundred_requests(bad_every: int = 10) -> list[dict[str, object]]:
    """100 requests; every ``bad_every``-th one malformed (0: none)."""
    return [
        bad_chat_request(str(i)) if bad_every and i % bad_every == 0 else chat_request(str(i))
        for i in range(100)
    ]


def counts(job: dict[str, object]) -> tuple[object, ...]:
    return (
        job["status"],
        job["completed_requests"],
        job["succeeded_requests"],
        job["failed_requests"],
    )


def test_queued_running_success_with_counts_at_each_instant(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client, requests=hundred_requests())
    assert counts(job) == ("QUEUED", 0, 0, 0)
    assert job["total_requests"] == 100
    assert job["created_at"] == EPOCH
    assert job["started_at"] is None and job["completed_at"] is None
    assert job["output_file"] is None and job["error_file"] is None

    emulator_clock.advance(0.999)
    assert counts(get_job(emulator_client, job["id"])) == ("QUEUED", 0, 0, 0)

    emulator_clock.advance(0.001)  # t = 1.0: leaves the queue
    running = get_job(emulator_client, job["id"])
    assert counts(running) == ("RUNNING", 0, 0, 0)
    assert running["started_at"] == EPOCH + 1
    assert running["output_file"] is None

    emulator_clock.advance(1.0)  # t = 2.0: half of 100 requests at 50/s
    half = get_job(emulator_client, job["id"])
    assert counts(half) == ("RUNNING", 50, 45, 5)  # failures spread evenly
    assert half["completed_at"] is None

    emulator_clock.advance(1.0)  # t = 3.0: done
    done = get_job(emulator_client, job["id"])
    assert counts(done) == ("SUCCESS", 100, 90, 10)
    assert done["completed_at"] == EPOCH + 3
    assert done["errors"] == []

    output = download_lines(emulator_client, done["output_file"])
    errors = download_lines(emulator_client, done["error_file"])
    assert sorted(int(line["custom_id"]) for line in output) == [i for i in range(100) if i % 10]
    assert [line["custom_id"] for line in errors] == [str(i) for i in range(0, 100, 10)]
    assert {line["response"]["status_code"] for line in output} == {200}
    assert {line["response"]["status_code"] for line in errors} == {400}
    assert errors[0]["response"]["body"]["message"] == "'messages' is required"
    assert all(line["id"].startswith("batch-") and line["error"] is None for line in output)


def test_all_requests_failing_ends_failed(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client, requests=[bad_chat_request(str(i)) for i in range(5)])
    emulator_clock.advance(2)
    done = get_job(emulator_client, job["id"])
    assert counts(done) == ("FAILED", 5, 0, 5)
    assert done["output_file"] is None
    assert len(download_lines(emulator_client, done["error_file"])) == 5
    assert done["errors"] and done["errors"][0]["count"] == 5


def test_timeout_exceeded_at_the_deadline_with_partial_results(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    emulator.set_hour_length(1.0)  # timeout_hours=2 -> a 2 s deadline; the job needs 3 s
    job = create_job(emulator_client, requests=hundred_requests(bad_every=0), timeout_hours=2)
    emulator_clock.advance(1.999)
    assert get_job(emulator_client, job["id"])["status"] == "RUNNING"
    emulator_clock.advance(0.001)
    timed_out = get_job(emulator_client, job["id"])
    assert counts(timed_out) == ("TIMEOUT_EXCEEDED", 50, 50, 0)
    assert timed_out["completed_at"] == EPOCH + 2
    assert timed_out["errors"][0]["count"] == 50  # requests never run
    assert len(download_lines(emulator_client, timed_out["output_file"])) == 50


def test_a_job_that_fits_its_timeout_succeeds(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    emulator.set_hour_length(1.0)
    job = create_job(emulator_client, requests=hundred_requests(bad_every=0), timeout_hours=3)
    emulator_clock.advance(3)
    assert get_job(emulator_client, job["id"])["status"] == "SUCCESS"


def test_cancel_while_running_freezes_counts_then_cancelled(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client, requests=hundred_requests())
    emulator_clock.advance(2.0)
    response = emulator_client.post(f"{JOBS}/{job['id']}/cancel")
    assert response.status_code == 200
    assert counts(response.json()) == ("CANCELLATION_REQUESTED", 50, 45, 5)

    emulator_clock.advance(0.49)
    assert counts(get_job(emulator_client, job["id"])) == ("CANCELLATION_REQUESTED", 50, 45, 5)
    again = emulator_client.post(f"{JOBS}/{job['id']}/cancel")  # idempotent while cancelling
    assert again.status_code == 200 and again.json()["status"] == "CANCELLATION_REQUESTED"

    emulator_clock.advance(0.01)
    cancelled = get_job(emulator_client, job["id"])
    assert counts(cancelled) == ("CANCELLED", 50, 45, 5)
    assert cancelled["completed_at"] == EPOCH + 2  # 2.5 s, shown in whole seconds
    emulator_clock.advance(100)  # the natural end (t = 3) never comes
    assert counts(get_job(emulator_client, job["id"])) == ("CANCELLED", 50, 45, 5)
    assert len(download_lines(emulator_client, cancelled["output_file"])) == 45
    assert len(download_lines(emulator_client, cancelled["error_file"])) == 5


def test_cancel_while_queued_never_starts_and_has_no_results(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client, requests=hundred_requests())
    emulator_clock.advance(0.5)
    emulator_client.post(f"{JOBS}/{job['id']}/cancel").raise_for_status()
    emulator_clock.advance(0.6)  # past start_at: it must not start
    cancelled = get_job(emulator_client, job["id"])
    assert counts(cancelled) == ("CANCELLED", 0, 0, 0)
    assert cancelled["started_at"] is None
    assert cancelled["output_file"] is None and cancelled["error_file"] is None
    listed = emulator_client.get(FILES, params={"source": "mistral"}).json()
    assert listed["total"] == 0


def test_changing_speed_does_not_move_existing_jobs(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    slow = create_job(emulator_client)
    emulator.set_speed(100.0)
    fast = create_job(emulator_client)
    emulator_clock.advance(0.5)
    assert get_job(emulator_client, slow["id"])["status"] == "QUEUED"
    assert get_job(emulator_client, fast["id"])["status"] == "SUCCESS"


def test_result_files_appear_in_listing_only_once_finished(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client, requests=hundred_requests())
    emulator_clock.advance(2.9)
    assert emulator_client.get(FILES).json()["total"] == 0
    emulator_clock.advance(0.1)
    listed = emulator_client.get(FILES).json()
    done = get_job(emulator_client, job["id"])
    by_id = {item["id"]: item for item in listed["data"]}
    assert set(by_id) == {done["output_file"], done["error_file"]}
    output = by_id[done["output_file"]]
    assert (output["purpose"], output["source"], output["sample_type"]) == (
        "batch",
        "mistral",
        "batch_result",
    )
    assert by_id[done["error_file"]]["sample_type"] == "batch_error"
    assert output["num_lines"] == 90 and output["bytes"] > 0


def test_inline_outputs_only_once_finished(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client, requests=[chat_request("a"), bad_chat_request("b")])
    assert get_job(emulator_client, job["id"], inline="true")["outputs"] is None
    assert get_job(emulator_client, job["id"])["outputs"] is None
    emulator_clock.advance(2)
    outputs = get_job(emulator_client, job["id"], inline="true")["outputs"]
    assert [(o["custom_id"], o["response"]["status_code"]) for o in outputs] == [
        ("a", 200),
        ("b", 400),
    ]
    assert get_job(emulator_client, job["id"], inline="false")["outputs"] is None


def test_jobs_created_inline_return_their_outputs_without_being_asked(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    """The SDK's own inline example (examples/mistral/jobs/async_batch_job_chat_completion_
    inline.py) polls ``batch.jobs.get(job_id=...)`` without ``inline`` and then iterates
    ``job.outputs``: for a job created with inline requests the API must send them."""
    inline = create_job(emulator_client, requests=[chat_request("a")])
    file_id = upload(emulator_client, jsonl([chat_request("f")]))["id"]
    from_file = create_job(emulator_client, input_files=[file_id])
    emulator_clock.advance(2)
    outputs = get_job(emulator_client, inline["id"])["outputs"]
    assert [o["custom_id"] for o in outputs] == ["a"]
    assert get_job(emulator_client, from_file["id"])["outputs"] is None  # files: on request
    asked = get_job(emulator_client, from_file["id"], inline="true")["outputs"]
    assert [o["custom_id"] for o in asked] == ["f"]
    listed = emulator_client.get(JOBS).json()["data"]
    assert all(job["outputs"] is None for job in listed)  # never in listings


def test_input_files_run_in_order_and_survive_deletion_of_the_file(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    first = upload(emulator_client, jsonl([chat_request("1"), chat_request("2")]))
    second = upload(emulator_client, jsonl([chat_request("3")]))
    job = create_job(emulator_client, input_files=[first["id"], second["id"]])
    assert job["input_files"] == [first["id"], second["id"]] and job["total_requests"] == 3
    emulator_client.delete(f"{FILES}/{first['id']}").raise_for_status()
    emulator_clock.advance(2)
    done = get_job(emulator_client, job["id"])
    assert done["status"] == "SUCCESS"
    lines = download_lines(emulator_client, done["output_file"])
    assert [line["custom_id"] for line in lines] == ["1", "2", "3"]


def test_results_are_deterministic_and_materialized_once(
    emulator: Emulator, emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client, requests=hundred_requests())
    emulator_clock.advance(5)
    done = get_job(emulator_client, job["id"])
    url = f"{FILES}/{done['output_file']}/content"
    bodies: list[bytes] = []

    def fetch() -> None:
        # Each thread its own Emulator on the same database: like separate processes.
        other = Emulator(emulator.db_path, clock=emulator_clock)
        with in_process_client(other, api_key="t") as client:
            bodies.append(client.get(url).content)
        other.close()

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(bodies) == 6 and len(set(bodies)) == 1 and bodies[0]
    assert emulator_client.get(url).content == bodies[0]
    leftovers = list((emulator.blob_dir / "tmp").iterdir())
    assert leftovers == []


# --- the Python rule and the SQL rule agree --------------------------------------------


@st.composite
def timelines(draw: st.DrawFn) -> tuple[Timeline, float]:
    total = draw(st.integers(1, 500))
    timeline = Timeline.plan(
        now=0.0,
        total=total,
        bad=draw(st.integers(0, total)),
        speed=draw(st.sampled_from([0.5, 1.0, 7.0, 100.0])),
        timeout_seconds=draw(st.floats(0.1, 30.0)),
    )
    if draw(st.booleans()):
        at = draw(st.floats(0.0, timeline.end_at, exclude_max=True))
        timeline = timeline.cancelled(at, speed=1.0)
    return timeline, draw(st.floats(0.0, 40.0))


@settings(max_examples=300, deadline=None)
@given(timelines())
def test_status_rule_in_python_and_sql_agree(case: tuple[Timeline, float]) -> None:
    timeline, now = case
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(
            "CREATE TABLE jobs (start_at REAL, end_at REAL, final_status TEXT, cancel_at REAL)"
        )
        conn.execute(
            "INSERT INTO jobs VALUES (?, ?, ?, ?)",
            (timeline.start_at, timeline.end_at, timeline.final_status.value, timeline.cancel_at),
        )
        (sql_status,) = conn.execute(f"SELECT {STATUS_SQL} FROM jobs", {"now": now}).fetchone()
    finally:
        conn.close()
    assert Status(sql_status) is timeline.status(now)


@settings(max_examples=300, deadline=None)
@given(timelines(), st.floats(0.0, 40.0))
def test_counts_are_consistent_and_never_go_back(
    case: tuple[Timeline, float], later_by: float
) -> None:
    timeline, now = case
    early, late = timeline.counts(now), timeline.counts(now + later_by)
    for c in (early, late):
        assert c.completed == c.succeeded + c.failed
        assert 0 <= c.failed <= timeline.bad
        assert 0 <= c.completed <= timeline.total
    assert late.completed >= early.completed
    assert late.succeeded >= early.succeeded and late.failed >= early.failed
    if timeline.status(now) is Status.SUCCESS:
        assert early.completed == timeline.total and early.failed == timeline.bad
