"""Deterministic, realistic results for every endpoint; malformed bodies become 400 lines."""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from emulator_support import create_job, get_job

from reconciler.api import ENDPOINTS
from reconciler.emulator import ManualClock

MESSAGES = [{"role": "user", "content": "Best French cheese?"}]
VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"messages": MESSAGES, "max_tokens": 100},
    "/v1/embeddings": {"input": ["hello", "world"]},
    "/v1/fim/completions": {"prompt": "def f(x):", "suffix": "return y"},
    "/v1/moderations": {"input": "some text"},
    "/v1/chat/moderations": {"input": MESSAGES},
    "/v1/ocr": {"document": {"type": "document_url", "document_url": "https://x/a.pdf"}},
    "/v1/classifications": {"input": ["good", "bad"]},
    "/v1/chat/classifications": {"input": {"messages": MESSAGES}},
    "/v1/conversations": {"inputs": "Hello there"},
    "/v1/audio/transcriptions": {"file_url": "https://x/a.mp3"},
}
MALFORMED: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"max_tokens": 10},
    "/v1/embeddings": {"inputs": "typo"},
    "/v1/fim/completions": {"suffix": "x"},
    "/v1/moderations": {"input": 42},
    "/v1/chat/moderations": {"input": "not messages"},
    "/v1/ocr": {"document": "https://x/a.pdf"},
    "/v1/classifications": {},
    "/v1/chat/classifications": {"input": [{"content": "no role"}]},
    "/v1/conversations": {"inputs": []},
    "/v1/audio/transcriptions": {"language": "en"},
}
SHAPE: dict[str, set[str]] = {
    "/v1/chat/completions": {"id", "object", "model", "created", "choices", "usage"},
    "/v1/embeddings": {"id", "object", "model", "data", "usage"},
    "/v1/fim/completions": {"id", "object", "model", "created", "choices", "usage"},
    "/v1/moderations": {"id", "model", "results"},
    "/v1/chat/moderations": {"id", "model", "results"},
    "/v1/ocr": {"model", "pages", "usage_info"},
    "/v1/classifications": {"id", "model", "results"},
    "/v1/chat/classifications": {"id", "model", "results"},
    "/v1/conversations": {"object", "conversation_id", "outputs", "usage"},
    "/v1/audio/transcriptions": {"model", "text", "language", "usage"},
}
# A model of the catalogue that serves each endpoint (classifiers are always fine-tuned).
MODEL_FOR: dict[str, str] = {
    "/v1/chat/completions": "mistral-small-latest",
    "/v1/embeddings": "mistral-embed",
    "/v1/fim/completions": "codestral-latest",
    "/v1/moderations": "mistral-moderation-latest",
    "/v1/chat/moderations": "mistral-moderation-latest",
    "/v1/ocr": "mistral-ocr-latest",
    "/v1/classifications": "ft:classifier:ministral-3b-latest:abc:20250401:f00d",
    "/v1/chat/classifications": "ft:classifier:ministral-3b-latest:abc:20250401:f00d",
    "/v1/conversations": "mistral-medium-latest",
    "/v1/audio/transcriptions": "voxtral-mini-latest",
}
# Ids are per job and request, timestamps per job: everything else follows the request.
VARYING = {"id", "conversation_id", "created", "created_at", "completed_at"}


def run(client: httpx.Client, clock: ManualClock, endpoint: str, bodies: list[Any]) -> list[Any]:
    job = create_job(
        client,
        endpoint=endpoint,
        model=MODEL_FOR[endpoint],
        requests=[{"custom_id": str(i), "body": body} for i, body in enumerate(bodies)],
    )
    clock.advance(2)
    outputs: list[Any] = get_job(client, job["id"], inline="true")["outputs"]
    return sorted(outputs, key=lambda line: line["custom_id"])


def test_the_tables_cover_every_endpoint() -> None:
    assert set(VALID) == set(MALFORMED) == set(SHAPE) == set(MODEL_FOR) == set(ENDPOINTS)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_each_endpoint_answers_valid_and_rejects_malformed(
    emulator_client: httpx.Client, emulator_clock: ManualClock, endpoint: str
) -> None:
    good, bad = run(
        emulator_client, emulator_clock, endpoint, [VALID[endpoint], MALFORMED[endpoint]]
    )
    assert good["response"]["status_code"] == 200
    assert SHAPE[endpoint] <= set(good["response"]["body"])
    assert bad["response"]["status_code"] == 400
    assert bad["response"]["body"]["type"] == "invalid_request_error"
    again = run(emulator_client, emulator_clock, endpoint, [VALID[endpoint]])[0]

    def without_ids(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: without_ids(v) for k, v in value.items() if k not in VARYING}
        if isinstance(value, list):
            return [without_ids(v) for v in value]
        return value

    # Same request, same answer.
    assert without_ids(again["response"]["body"]) == without_ids(good["response"]["body"])


def test_chat_echoes_the_last_user_message_with_usage(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Name a cheese"}]},
    ]
    short, full = run(
        emulator_client,
        emulator_clock,
        "/v1/chat/completions",
        [{"messages": messages, "max_tokens": 2}, {"messages": messages}],
    )
    choice = full["response"]["body"]["choices"][0]
    assert "Name a cheese" in choice["message"]["content"] and choice["finish_reason"] == "stop"
    assert short["response"]["body"]["choices"][0]["finish_reason"] == "length"
    usage = full["response"]["body"]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert full["response"]["body"]["model"] == "mistral-small-latest"


def test_embeddings_are_unit_vectors_that_depend_on_the_text(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    (line,) = run(emulator_client, emulator_clock, "/v1/embeddings", [{"input": ["a", "b", "a"]}])
    data = line["response"]["body"]["data"]
    vectors = [item["embedding"] for item in data]
    assert [item["index"] for item in data] == [0, 1, 2]
    assert all(len(v) == 1024 for v in vectors)
    assert all(abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-3 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    (small,) = run(
        emulator_client, emulator_clock, "/v1/embeddings", [{"input": "a", "output_dimension": 8}]
    )
    assert len(small["response"]["body"]["data"][0]["embedding"]) == 8
