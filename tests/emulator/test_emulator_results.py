"""Result lines as the real API writes them, judged by the official SDK's own response types,
and ``usage`` that follows the request's contents (issues 11 and 14)."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from emulator_support import FILES, create_job, get_job, upload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mistralai.client import models as sdk
from test_emulator_endpoints import MODEL_FOR, VALID, run

from reconciler.api import ENDPOINTS
from reconciler.emulator import ManualClock, synth

# The SDK's type for each endpoint's response body (classifications: a dict per input).
SDK_TYPE: dict[str, Any] = {
    "/v1/chat/completions": sdk.ChatCompletionResponse,
    "/v1/embeddings": sdk.EmbeddingResponse,
    "/v1/fim/completions": sdk.FIMCompletionResponse,
    "/v1/moderations": sdk.ModerationResponse,
    "/v1/chat/moderations": sdk.ModerationResponse,
    "/v1/ocr": sdk.OCRResponse,
    "/v1/classifications": sdk.ClassificationResponse,
    "/v1/chat/classifications": sdk.ClassificationResponse,
    "/v1/conversations": sdk.ConversationResponse,
    "/v1/audio/transcriptions": sdk.TranscriptionResponse,
}
LINE_ID = re.compile(r"^batch-[0-9a-f]{8}-[1-9][0-9]*-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab]")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_result_body_parses_as_the_sdks_type_and_names_the_model(
    emulator_client: httpx.Client, emulator_clock: ManualClock, endpoint: str
) -> None:
    (line,) = run(emulator_client, emulator_clock, endpoint, [VALID[endpoint]])
    body = line["response"]["body"]
    SDK_TYPE[endpoint].model_validate(body)
    # The model as the job named it: the docs' batch results echo the requested name
    # (ministral-3b-latest, mistral-ocr-latest, voxtral-mini-latest), alias or not.
    named = [o["model"] for o in body["outputs"]] if "outputs" in body else [body["model"]]
    assert named == [MODEL_FOR[endpoint]]
    assert LINE_ID.match(line["id"]), line["id"]


def test_usage_has_every_key_of_the_sdks_usage_model(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    keys = set(sdk.UsageInfo.model_fields)
    for endpoint in (
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/fim/completions",
        "/v1/audio/transcriptions",
    ):
        (line,) = run(emulator_client, emulator_clock, endpoint, [VALID[endpoint]])
        usage = line["response"]["body"]["usage"]
        assert keys <= set(usage), (endpoint, keys - set(usage))
    (conversation,) = run(
        emulator_client, emulator_clock, "/v1/conversations", [VALID["/v1/conversations"]]
    )
    assert set(sdk.ConversationUsageInfo.model_fields) <= set(
        conversation["response"]["body"]["usage"]
    )


def test_transcriptions_carry_finish_reason(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    endpoint = "/v1/audio/transcriptions"
    (line,) = run(emulator_client, emulator_clock, endpoint, [VALID[endpoint]])
    body = line["response"]["body"]
    assert "finish_reason" in body and body["finish_reason"] is None  # as the docs show
    assert body["usage"]["prompt_audio_seconds"] > 0


def test_line_ids_share_the_job_prefix_and_count_requests(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    bodies = [VALID["/v1/chat/completions"]] * 3
    lines = run(emulator_client, emulator_clock, "/v1/chat/completions", bodies)
    prefixes = {line["id"].split("-")[1] for line in lines}
    assert len(prefixes) == 1
    assert sorted(int(line["id"].split("-")[2]) for line in lines) == [1, 2, 3]
    assert len({line["id"] for line in lines}) == 3


@pytest.mark.parametrize(
    "document",
    [
        {"document_url": "https://example.com/a.pdf"},  # the docs' form: no type
        {"image_url": "https://example.com/a.png"},
        {"image_url": {"url": "https://example.com/a.png"}},
        {"file_id": "6b9f0b1e-1111-4a1a-9a1a-000000000000"},
        {"type": "document_url", "document_url": "https://example.com/a.pdf"},
    ],
)
def test_ocr_documents_need_no_type(
    emulator_client: httpx.Client, emulator_clock: ManualClock, document: dict[str, Any]
) -> None:
    (line,) = run(emulator_client, emulator_clock, "/v1/ocr", [{"document": document}])
    assert line["response"]["status_code"] == 200, line


@pytest.mark.parametrize(
    "document",
    [{"type": "image_url", "document_url": "https://x/a.pdf"}, {"type": "pdf"}, {}, "x"],
)
def test_ocr_documents_that_say_nothing_usable_fail(
    emulator_client: httpx.Client, emulator_clock: ManualClock, document: object
) -> None:
    (line,) = run(emulator_client, emulator_clock, "/v1/ocr", [{"document": document}])
    assert line["response"]["status_code"] == 400


def test_chat_classifications_accept_the_sdks_list_form(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    chat = [{"role": "user", "content": "I love it"}]
    forms = [
        {"input": [{"messages": chat}, {"messages": chat}]},  # SDK: List[InstructRequest]
        {"input": {"messages": chat}},
        {"input": [chat]},
    ]
    lines = run(emulator_client, emulator_clock, "/v1/chat/classifications", forms)
    assert [line["response"]["status_code"] for line in lines] == [200, 200, 200]
    assert len(lines[0]["response"]["body"]["results"]) == 2
    (bad,) = run(
        emulator_client, emulator_clock, "/v1/chat/classifications", [{"input": [{"x": 1}]}]
    )
    assert bad["response"]["status_code"] == 400


def test_files_accept_the_agentic_safety_purpose(emulator_client: httpx.Client) -> None:
    file = upload(emulator_client, b"{}\n", purpose="agentic_safety")
    assert file["purpose"] == "agentic_safety"
    listed = emulator_client.get(FILES, params={"purpose": "agentic_safety"}).json()
    assert [f["id"] for f in listed["data"]] == [file["id"]]


@pytest.mark.parametrize(
    ("expiry", "status"), [("0", 422), ("1", 200), ("168", 200), ("169", 422), ("9" * 5000, 422)]
)
def test_signed_url_expiry_is_bounded_like_the_spec(
    emulator_client: httpx.Client, expiry: str, status: int
) -> None:
    file = upload(emulator_client, b"{}\n")
    response = emulator_client.get(f"{FILES}/{file['id']}/url", params={"expiry": expiry})
    assert response.status_code == status, response.text


# --- usage follows the request (issue 14) ----------------------------------------------------


def test_chat_usage_follows_the_documented_rule(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},  # 9 characters: 3 tokens
        {"role": "user", "content": [{"type": "text", "text": "x" * 41}]},  # 11 tokens
    ]
    (line,) = run(emulator_client, emulator_clock, "/v1/chat/completions", [{"messages": messages}])
    body = line["response"]["body"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == 3 + 11 + 2 * synth.MESSAGE_OVERHEAD
    reply = body["choices"][0]["message"]["content"]
    assert usage["completion_tokens"] == synth.tokens(reply)
    assert synth.REPLY_MIN <= usage["completion_tokens"] <= synth.REPLY_MAX
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_embeddings_usage_counts_every_input(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    (line,) = run(emulator_client, emulator_clock, "/v1/embeddings", [{"input": ["abcd", "abcde"]}])
    usage = line["response"]["body"]["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1 + 2, 0)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=st.text(max_size=400),
    max_tokens=st.one_of(st.none(), st.integers(min_value=1, max_value=400)),
)
def test_completions_never_exceed_max_tokens_and_report_what_they_say(
    emulator_client: httpx.Client,
    emulator_clock: ManualClock,
    text: str,
    max_tokens: int | None,
) -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    job = create_job(emulator_client, requests=[{"custom_id": "0", "body": body}])
    emulator_clock.advance(2)
    (line,) = get_job(emulator_client, job["id"])["outputs"]
    result = line["response"]["body"]
    usage, choice = result["usage"], result["choices"][0]
    assert usage["prompt_tokens"] == synth.MESSAGE_OVERHEAD + synth.tokens(text)
    assert usage["completion_tokens"] == synth.tokens(choice["message"]["content"])
    if max_tokens is not None:
        assert usage["completion_tokens"] <= max_tokens
        cut = choice["finish_reason"] == "length"
        assert cut == (
            usage["completion_tokens"] == max_tokens < synth.reply_tokens(synth.digest(body))
        )
    # The same request, the same answer, in another job.
    again = create_job(emulator_client, requests=[{"custom_id": "0", "body": body}])
    emulator_clock.advance(2)
    (second,) = get_job(emulator_client, again["id"])["outputs"]
    assert second["response"]["body"]["usage"] == usage
