"""The client and the live reader against the emulator: in-process and over real HTTP."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from reconciler import tags
from reconciler.client import MistralClient, RetryPolicy
from reconciler.connect import make_client
from reconciler.emulator import (
    LOCAL_BASE_URL,
    Emulator,
    Faults,
    InProcessTransport,
    ManualClock,
)
from reconciler.errors import ApiError, UnknownOutcome
from reconciler.live import find_by_create_id, read_live_state

WS = "research-evals"
TOKEN = "sk-SECRET-emulator-test"
CHAT = "/v1/chat/completions"


def body(name: str, *, workspace: str = WS, create_id: str = "", n: int = 3) -> dict[str, Any]:
    metadata = {tags.WORKSPACE: workspace, tags.JOB: name, tags.ATTEMPT: "1", "team": "r"}
    metadata[tags.CREATE_ID] = create_id or f"cid-{name}-{workspace}"
    return {
        "endpoint": CHAT,
        "model": "mistral-small-latest",
        "requests": [
            {"custom_id": str(i), "body": {"messages": [{"role": "user", "content": f"q{i}"}]}}
            for i in range(n)
        ],
        "metadata": metadata,
        "timeout_hours": 24,
    }


@pytest.fixture
def client(emulator: Emulator) -> Iterator[MistralClient]:
    with MistralClient(
        LOCAL_BASE_URL,
        TOKEN,
        transport=InProcessTransport(emulator),
        sleep=lambda _: None,
    ) as c:
        yield c


def test_full_job_and_file_lifecycle_in_process(
    client: MistralClient, emulator_clock: ManualClock, tmp_path: Path
) -> None:
    data = tmp_path / "in.jsonl"
    lines = [
        {"custom_id": str(i), "body": {"messages": [{"role": "user", "content": "hi"}]}}
        for i in range(4)
    ]
    data.write_text("".join(json.dumps(line) + "\n" for line in lines))
    uploaded = client.upload_file(data, filename="in-0123abcd.jsonl")
    assert uploaded["filename"] == "in-0123abcd.jsonl"
    assert uploaded["purpose"] == "batch"
    assert client.get_file(uploaded["id"])["id"] == uploaded["id"]
    found = [f["id"] for page in client.iter_file_pages(search="in-0123abcd") for f in page]
    assert found == [uploaded["id"]]

    job_body = {**body("cheese"), "input_files": [uploaded["id"]]}
    del job_body["requests"]
    job = client.create_job(job_body)
    assert job["status"] == "QUEUED"
    assert job["input_files"] == [uploaded["id"]]

    emulator_clock.advance(60)
    done = client.get_job(job["id"], inline=True)
    assert done["status"] == "SUCCESS"
    assert done["total_requests"] == 4

    out = BytesIO()
    client.download_file(done["output_file"], out)
    results = [json.loads(line) for line in out.getvalue().splitlines()]
    assert sorted(r["custom_id"] for r in results) == ["0", "1", "2", "3"]

    assert client.delete_job(job["id"])["deleted"] is True
    assert client.delete_file(uploaded["id"])["deleted"] is True
    with pytest.raises(ApiError) as info:
        client.get_file(uploaded["id"])
    assert info.value.message == f"file {uploaded['id']} not found"


def test_cancel_then_delete(client: MistralClient, emulator_clock: ManualClock) -> None:
    job = client.create_job(body("wine", n=500))
    assert client.cancel_job(job["id"])["status"] == "CANCELLATION_REQUESTED"
    with pytest.raises(ApiError) as info:  # the emulator refuses to delete an active job
        client.delete_job(job["id"])
    assert info.value.status == 400
    emulator_clock.advance(60)
    assert client.get_job(job["id"])["status"] == "CANCELLED"
    client.delete_job(job["id"])


def test_emulator_errors_map_to_messages(client: MistralClient, emulator: Emulator) -> None:
    missing = "6f1c5d3e-0000-4000-8000-000000000000"
    with pytest.raises(ApiError, match=f"job {missing} not found"):
        client.get_job(missing)
    with pytest.raises(ApiError) as info:
        client.create_job({"endpoint": "/v1/nope", "model": "m", "requests": []})
    assert info.value.status == 422
    assert info.value.details, "each field error is listed"
    assert all(": " in d for d in info.value.details)
    emulator.set_api_keys(["the-only-key"])
    with pytest.raises(ApiError) as info:
        client.list_jobs()
    assert info.value.message == "the API rejected the key: check MISTRAL_API_KEY"
    assert TOKEN not in info.value.format()


def test_live_state_costs_ceil_managed_over_page_size(
    client: MistralClient, emulator: Emulator
) -> None:
    for i in range(230):
        client.create_job(body(f"job-{i % 40}", n=1))
    for i in range(120):
        client.create_job(body(f"other-{i}", workspace="someone-else", n=1))
    emulator.clear_request_log()
    client.reset_stats()

    state = read_live_state(client, WS)

    assert len(state.jobs) == 230
    assert state.foreign_seen == 0
    assert state.list_calls == math.ceil(230 / 100) == client.stats["list_jobs"]
    lists = [r for r in emulator.request_log() if r.path == "/v1/batch/jobs"]
    assert len(lists) == 3
    assert all(r.method == "GET" for r in emulator.request_log())  # reading never writes
    assert all("reconciler.workspace=research-evals" in r.query for r in lists)
    assert [j.seq for j in state.jobs] == sorted(j.seq for j in state.jobs)
    assert len(state.by_name()) == 40


def test_faulty_emulator_reads_succeed_through_retries(
    client: MistralClient, emulator: Emulator
) -> None:
    for i in range(30):
        client.create_job(body(f"j{i}", n=1))
    emulator.reseed(7)
    emulator.set_faults(Faults(rate_429=0.2, rate_5xx=0.2, retry_after=0))
    client.reset_stats()
    state = read_live_state(client, WS, page_size=5)
    assert len(state.jobs) == 30
    assert state.list_calls == 6
    assert client.attempts["list_jobs"] > client.stats["list_jobs"]  # some were retried


def test_dropped_create_is_unknown_and_resolved_by_create_id(
    client: MistralClient, emulator: Emulator
) -> None:
    emulator.set_faults(Faults(drop_creates=1.0))
    with pytest.raises(UnknownOutcome) as info:
        client.create_job(body("cheese", create_id="cid-drop-1"))
    assert info.value.request == "POST /v1/batch/jobs"
    emulator.set_faults(Faults())
    creates = [r for r in emulator.request_log() if r.method == "POST"]
    assert [(r.path, r.dropped) for r in creates] == [("/v1/batch/jobs", True)]

    adopted = find_by_create_id(client, WS, "cid-drop-1")
    assert adopted is not None
    assert (adopted.name, adopted.create_id) == ("cheese", "cid-drop-1")
    assert find_by_create_id(client, WS, "cid-never-sent") is None
    assert find_by_create_id(client, "another-workspace", "cid-drop-1") is None
    # Still exactly one job: nothing was re-sent.
    assert len(read_live_state(client, WS).jobs) == 1


def test_local_server_from_make_client(tmp_path: Path) -> None:
    client = make_client(tmp_path, "local", override=None, env={"MISTRAL_API_KEY": TOKEN})
    created = client.create_job(body("x"))
    assert read_live_state(client, WS).jobs[0].id == created["id"]
    client.close()
    # Persistent: a second client on the same root sees it.
    again = make_client(tmp_path, "local", override=None, env={})
    assert [j.id for j in read_live_state(again, WS).jobs] == [created["id"]]
    again.close()


# -- over real HTTP ------------------------------------------------------------------------


def test_over_http_with_the_served_emulator(served_emulator: str, tmp_path: Path) -> None:
    log: list[str] = []
    with MistralClient(served_emulator, TOKEN, debug_log=log.append) as client:
        data = tmp_path / "in.jsonl"
        data.write_bytes(b'{"custom_id": "a", "body": {"messages": []}}\n' * 2000)
        uploaded = client.upload_file(data, filename="in-http.jsonl")
        assert uploaded["bytes"] == data.stat().st_size
        job_body = {**body("served"), "input_files": [uploaded["id"]]}
        del job_body["requests"]
        job = client.create_job(job_body)
        state = read_live_state(client, WS)
        assert [j.id for j in state.jobs] == [job["id"]]
        assert client.get_job(job["id"])["id"] == job["id"]
        assert client.cancel_job(job["id"])["id"] == job["id"]
    assert TOKEN not in "\n".join(log)
    assert any("Bearer ***" in line for line in log)


def test_over_http_parallel_creates_share_one_pool(served_emulator: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with MistralClient(served_emulator, TOKEN) as client:
        with ThreadPoolExecutor(16) as pool:
            jobs = list(pool.map(lambda i: client.create_job(body(f"p{i}", n=1)), range(48)))
        assert len({j["id"] for j in jobs}) == 48
        state = read_live_state(client, WS, page_size=20)
        assert len(state.jobs) == 48
        assert state.list_calls == 3


def test_over_http_dropped_create(emulator_server: Callable[..., Any]) -> None:
    server = emulator_server("--drop-creates", "1")
    with MistralClient(server.url, TOKEN, sleep=lambda _: None) as client:
        with pytest.raises(UnknownOutcome):
            client.create_job(body("dropped", create_id="cid-http-drop"))
        assert client.attempts["create_job"] == 1
        found = find_by_create_id(client, WS, "cid-http-drop")
        assert found is not None and found.name == "dropped"


def test_over_http_unreachable_after_stop(emulator_server: Callable[..., Any]) -> None:
    server = emulator_server()
    server.stop()
    host = server.url.split("://", 1)[1].rstrip("/")
    with (
        MistralClient(
            server.url, TOKEN, sleep=lambda _: None, retry=RetryPolicy(max_attempts=2)
        ) as client,
        pytest.raises(ApiError) as info,
    ):
        client.list_jobs()
    assert info.value.message.startswith(f"cannot reach {host}: ConnectError")
    assert TOKEN not in info.value.format()
