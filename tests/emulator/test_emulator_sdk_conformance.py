"""Conformance: every batch-job and file operation of the official ``mistralai`` SDK (3.7),
over real HTTP, against ``reconciler emulator serve`` running as a subprocess.

Time is moved with the admin clock (``POST /_emulator/clock``), so the walk from QUEUED to
SUCCESS is exact and quick.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from emulator_support import bad_chat_request, chat_request, jsonl
from mistralai.client import Mistral
from mistralai.client.errors import SDKError
from mistralai.client.models import BaseModelCard

WORKSPACE = "reconciler.workspace"


@pytest.fixture
def served(emulator_server: Callable[..., Any]) -> Any:
    return emulator_server("--speed", "1")


@pytest.fixture
def sdk(served: Any) -> Iterator[Mistral]:
    with Mistral(api_key="sdk-key", server_url=served.url) as client:
        yield client


def advance(url: str, seconds: float) -> None:
    httpx.post(f"{url}/_emulator/clock", json={"advance": seconds}, timeout=10).raise_for_status()


def test_every_operation_through_the_sdk(sdk: Mistral, served: Any) -> None:
    requests = [
        bad_chat_request(str(i)) if i % 10 == 0 else chat_request(str(i)) for i in range(100)
    ]
    content = jsonl(requests)

    # --- files -----------------------------------------------------------------------------
    uploaded = sdk.files.upload(
        file={"file_name": "cheese-eval.jsonl", "content": content}, purpose="batch"
    )
    assert (uploaded.filename, uploaded.purpose, uploaded.size_bytes) == (
        "cheese-eval.jsonl",
        "batch",
        len(content),
    )
    assert (uploaded.sample_type, uploaded.source, uploaded.num_lines) == (
        "batch_request",
        "upload",
        100,
    )
    other = sdk.files.upload(file={"file_name": "notes.txt", "content": b"x"}, purpose="ocr")
    safety = sdk.files.upload(
        file={"file_name": "safety.jsonl", "content": b"{}\n"}, purpose="agentic_safety"
    )
    assert safety.purpose == "agentic_safety"
    found = sdk.files.list(purpose="batch", search="cheese")
    assert found.total == 1 and [f.id for f in found.data] == [uploaded.id]
    assert sdk.files.list(sample_type=["batch_request"], source=["upload"]).total == 1
    assert sdk.files.list(page=0, page_size=1).total == 3
    retrieved = sdk.files.retrieve(file_id=uploaded.id)
    assert retrieved.deleted is False and retrieved.id == uploaded.id
    download = sdk.files.download(file_id=uploaded.id)
    try:
        assert download.read() == content
    finally:
        download.close()
    # A signed URL downloads without the bearer token, until it expires.
    with pytest.raises(SDKError) as too_long:
        sdk.files.get_signed_url(file_id=uploaded.id, expiry=169)  # the spec: 1..168 hours
    assert too_long.value.status_code == 422
    signed = sdk.files.get_signed_url(file_id=uploaded.id, expiry=1)
    assert signed.url.startswith(served.url)
    assert httpx.get(signed.url, timeout=10).content == content
    forged = signed.url.replace("sig=", "sig=0")
    assert httpx.get(forged, timeout=10).status_code == 403
    advance(served.url, 3601)
    assert httpx.get(signed.url, timeout=10).status_code == 403

    # --- models: the catalogue, and creates checked against it ------------------------------
    catalogue = sdk.models.list()
    cards = [card for card in catalogue.data or [] if isinstance(card, BaseModelCard)]
    assert len(cards) == len(catalogue.data or [])  # none parsed as the SDK's "unknown"
    assert {"mistral-small-latest", "mistral-embed", "mistral-ocr-latest"} <= {c.id for c in cards}
    embeds = sdk.models.list(model="mistral-embed").data or []
    assert [c.id for c in embeds if isinstance(c, BaseModelCard)] == [
        "mistral-embed-2312",
        "mistral-embed",
    ]
    small = sdk.models.retrieve(model_id="mistral-small-latest")
    assert isinstance(small, BaseModelCard) and small.capabilities.completion_chat
    with pytest.raises(SDKError) as unknown_model:
        sdk.models.retrieve(model_id="mistral-smal-latest")
    assert unknown_model.value.status_code == 404
    with pytest.raises(SDKError) as base_model:
        sdk.models.delete(model_id="mistral-small-latest")
    assert base_model.value.status_code == 400
    one_request: list[Any] = [{"custom_id": "0", "body": {}}]
    with pytest.raises(SDKError) as invalid_model:
        sdk.batch.jobs.create(
            endpoint="/v1/chat/completions", model="mistral-smal-latest", requests=one_request
        )
    assert invalid_model.value.status_code == 400
    assert json.loads(invalid_model.value.body)["type"] == "invalid_model"

    # --- jobs: create both ways, list with filters -------------------------------------------
    from_file = sdk.batch.jobs.create(
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        input_files=[uploaded.id],
        metadata={WORKSPACE: "conformance", "dataset": "cheese"},
        timeout_hours=2,
    )
    assert from_file.status == "QUEUED" and from_file.total_requests == 100
    assert from_file.input_files == [uploaded.id]
    embedding_requests: list[Any] = [
        {"custom_id": str(i), "body": {"input": f"text {i}"}} for i in range(500)
    ]
    inline = sdk.batch.jobs.create(
        endpoint="/v1/embeddings",
        model="mistral-embed",
        requests=embedding_requests,
        metadata={WORKSPACE: "elsewhere"},
    )
    mine = sdk.batch.jobs.list(metadata={WORKSPACE: "conformance"})
    assert mine.total == 1 and [j.id for j in mine.data or []] == [from_file.id]
    both = sdk.batch.jobs.list(status=["QUEUED", "RUNNING"], order_by="created")
    assert [j.id for j in both.data or []] == [from_file.id, inline.id]
    assert sdk.batch.jobs.list(status=["SUCCESS"]).total == 0
    assert sdk.batch.jobs.list(model="mistral-embed").total == 1
    assert sdk.batch.jobs.list(created_by_me=True).total == 2
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert sdk.batch.jobs.list(created_after=yesterday).total == 2
    assert sdk.batch.jobs.list(created_after=datetime.now(UTC) + timedelta(days=1)).total == 0

    # --- follow one job from QUEUED to SUCCESS -----------------------------------------------
    assert sdk.batch.jobs.get(job_id=from_file.id).status == "QUEUED"
    advance(served.url, 1.0)
    running = sdk.batch.jobs.get(job_id=from_file.id)
    assert running.status == "RUNNING" and running.started_at is not None
    assert running.output_file is None
    advance(served.url, 1.0)
    halfway = sdk.batch.jobs.get(job_id=from_file.id)
    assert halfway.status == "RUNNING"
    assert 0 < halfway.completed_requests < 100
    assert halfway.completed_requests == halfway.succeeded_requests + halfway.failed_requests

    # --- cancel the other one meanwhile ------------------------------------------------------
    cancelling = sdk.batch.jobs.cancel(job_id=inline.id)
    assert cancelling.status == "CANCELLATION_REQUESTED"
    advance(served.url, 2.0)
    done = sdk.batch.jobs.get(job_id=from_file.id, inline=True)
    assert done.status == "SUCCESS"
    assert (done.completed_requests, done.succeeded_requests, done.failed_requests) == (100, 90, 10)
    assert isinstance(done.outputs, list) and len(done.outputs) == 100
    assert sdk.batch.jobs.get(job_id=inline.id).status == "CANCELLED"
    assert sdk.batch.jobs.list(status=["SUCCESS"]).total == 1

    # --- results, downloaded with the SDK ----------------------------------------------------
    assert isinstance(done.output_file, str) and isinstance(done.error_file, str)
    output = sdk.files.download(file_id=done.output_file)
    try:
        lines = [json.loads(line) for line in output.read().splitlines()]
    finally:
        output.close()
    assert len(lines) == 90
    assert {line["response"]["status_code"] for line in lines} == {200}
    first = lines[0]["response"]["body"]
    assert first["object"] == "chat.completion" and first["choices"][0]["message"]["content"]
    errors = sdk.files.download(file_id=done.error_file)
    try:
        error_lines = [json.loads(line) for line in errors.read().splitlines()]
    finally:
        errors.close()
    assert sorted(line["custom_id"] for line in error_lines) == sorted(
        str(i) for i in range(0, 100, 10)
    )
    result_file = sdk.files.retrieve(file_id=done.output_file)
    assert (result_file.sample_type, result_file.source) == ("batch_result", "mistral")

    # --- the forms the SDK's types allow, inline results without asking ---------------------
    chat: Any = [{"role": "user", "content": "I love it"}]
    classify: list[Any] = [{"custom_id": "0", "body": {"input": [{"messages": chat}]}}]
    ocr: list[Any] = [{"custom_id": "0", "body": {"document": {"document_url": "https://x/a.pdf"}}}]
    classified = sdk.batch.jobs.create(
        endpoint="/v1/chat/classifications",
        model="ft:classifier:ministral-3b-latest:abc:20250401:f00d",
        requests=classify,
    )
    read = sdk.batch.jobs.create(endpoint="/v1/ocr", model="mistral-ocr-latest", requests=ocr)
    advance(served.url, 5.0)
    for job in (classified, read):
        finished = sdk.batch.jobs.get(job_id=job.id)  # no inline=True: the SDK's own example
        assert finished.status == "SUCCESS", finished
        assert [o["response"]["status_code"] for o in finished.outputs or []] == [200]
    body = (sdk.batch.jobs.get(job_id=read.id).outputs or [{}])[0]["response"]["body"]
    assert body["model"] == "mistral-ocr-latest"

    # --- delete ------------------------------------------------------------------------------
    deleted = sdk.batch.jobs.delete(job_id=inline.id)
    assert deleted.id == inline.id and deleted.deleted is True
    with pytest.raises(SDKError) as missing:
        sdk.batch.jobs.get(job_id=inline.id)
    assert missing.value.status_code == 404
    assert sdk.files.delete(file_id=other.id).deleted is True
    with pytest.raises(SDKError) as gone:
        sdk.files.retrieve(file_id=other.id)
    assert gone.value.status_code == 404
    with pytest.raises(SDKError) as refused:
        sdk.batch.jobs.cancel(job_id=from_file.id)
    assert refused.value.status_code == 400


def test_sdk_sees_401_with_a_wrong_key(emulator_server: Callable[..., Any]) -> None:
    served = emulator_server("--api-key", "right")
    with (
        Mistral(api_key="wrong", server_url=served.url) as client,
        pytest.raises(SDKError) as denied,
    ):
        client.batch.jobs.list()
    assert denied.value.status_code == 401
    with Mistral(api_key="right", server_url=served.url) as client:
        assert client.batch.jobs.list().total == 0


def test_request_faults_and_limits_from_the_command_line(
    emulator_server: Callable[..., Any],
) -> None:
    served = emulator_server(
        "--fail-requests", "0.5", "--fail-requests-permanent", "0.1",
        "--max-requests-per-job", "40", "--max-pending-requests", "60",
    )  # fmt: skip
    with Mistral(api_key="k", server_url=served.url) as client:
        requests: list[Any] = [chat_request(str(i)) for i in range(41)]
        with pytest.raises(SDKError) as too_big:
            client.batch.jobs.create(
                endpoint="/v1/chat/completions", model="mistral-small-latest", requests=requests
            )
        assert too_big.value.status_code == 400 and "at most 40" in too_big.value.body
        job = client.batch.jobs.create(
            endpoint="/v1/chat/completions", model="mistral-small-latest", requests=requests[:40]
        )
        with pytest.raises(SDKError) as no_room:  # 40 pending + 40 > 60
            client.batch.jobs.create(
                endpoint="/v1/chat/completions",
                model="mistral-small-latest",
                requests=requests[:40],
            )
        assert no_room.value.status_code == 400 and "pending" in no_room.value.body
        advance(served.url, 5.0)
        done = client.batch.jobs.get(job_id=job.id)
        assert done.status == "SUCCESS" and 0 < done.failed_requests < 40
        statuses = {o["response"]["status_code"] for o in done.outputs or []}
        assert statuses == {200, 400, 429, 500}
