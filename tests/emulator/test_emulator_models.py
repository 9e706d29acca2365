"""``GET /v1/models`` serves Mistral's public catalogue, and creates are checked against it.

The SDK's own pydantic types (``ModelList``, ``BaseModelCard``) are the judge of the wire
shape; the real API's answer to an unknown model is a 400 ``invalid_model``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from emulator_support import CHAT, JOBS, chat_request, create_job
from mistralai.client.models import BaseModelCard, ModelList

from reconciler.api import ENDPOINTS
from reconciler.emulator import catalogue

MODELS = "/v1/models"


def _listing(client: httpx.Client, **params: str) -> dict[str, Any]:
    response = client.get(MODELS, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_sdk_parses_the_listing(emulator_client: httpx.Client) -> None:
    body = _listing(emulator_client)
    parsed = ModelList.model_validate(body)
    assert parsed.data is not None and len(parsed.data) == len(body["data"])
    for item in parsed.data:
        assert isinstance(item, BaseModelCard), item  # not the SDK's "unknown" variant
    ids = [card["id"] for card in body["data"]]
    assert len(ids) == len(set(ids))
    assert {"mistral-small-latest", "mistral-embed", "codestral-latest"} <= set(ids)


def test_every_name_has_its_own_card_naming_the_dated_id(emulator_client: httpx.Client) -> None:
    cards = {card["id"]: card for card in _listing(emulator_client)["data"]}
    small = cards["mistral-small-latest"]
    assert small["name"] == "mistral-small-2603"
    assert small["aliases"] == ["mistral-small-2603"]
    assert cards["mistral-small-2603"]["aliases"] == ["mistral-small-latest"]
    assert small["capabilities"]["completion_chat"] is True
    assert small["capabilities"]["completion_fim"] is False
    assert cards["codestral-latest"]["capabilities"]["completion_fim"] is True
    assert cards["mistral-ocr-latest"]["capabilities"]["ocr"] is True
    assert cards["mistral-moderation-latest"]["capabilities"]["moderation"] is True
    assert cards["voxtral-mini-latest"]["capabilities"]["audio_transcription"] is True
    embed = cards["mistral-embed"]["capabilities"]
    assert not any(embed.values())  # as the real API shows embedding models
    assert cards["mistral-medium-2508"]["deprecation"] == "2026-08-31T12:00:00Z"
    assert cards["mistral-medium-2508"]["deprecation_replacement_model"] == "mistral-medium-latest"
    # Retired models are not listed.
    assert "open-mistral-7b" not in cards and "mistral-tiny" not in cards


def test_list_filters_and_retrieve(emulator_client: httpx.Client) -> None:
    only = _listing(emulator_client, model="mistral-embed")["data"]
    assert sorted(card["id"] for card in only) == ["mistral-embed", "mistral-embed-2312"]
    assert _listing(emulator_client, provider="someone-else")["data"] == []
    got = emulator_client.get(f"{MODELS}/codestral-latest")
    assert got.status_code == 200
    assert BaseModelCard.model_validate(got.json()).name == "codestral-2508"
    missing = emulator_client.get(f"{MODELS}/mistral-smal-latest")
    assert missing.status_code == 404 and missing.json()["object"] == "error"
    tuned = emulator_client.get(f"{MODELS}/ft:open-mistral-7b:abc:20240101:1234")
    assert tuned.status_code == 404  # the emulator hosts no fine-tunes
    refused = emulator_client.delete(f"{MODELS}/mistral-small-latest")
    assert refused.status_code == 400 and refused.json()["type"] == "invalid_request_error"
    assert emulator_client.delete(f"{MODELS}/ft:x:y").status_code == 404


def test_models_need_a_token(emulator_client: httpx.Client) -> None:
    assert emulator_client.get(MODELS, headers={"Authorization": ""}).status_code == 401


def _invalid_model(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["type"] == "invalid_model" and body["object"] == "error"
    assert body["code"] == "1500" and body["param"] is None
    message: str = body["message"]
    return message


def test_an_unknown_model_is_refused_like_the_api(emulator_client: httpx.Client) -> None:
    body = {"endpoint": CHAT, "model": "mistral-smal-latest", "requests": [chat_request("0")]}
    message = _invalid_model(emulator_client.post(JOBS, json=body))
    assert message == "Invalid model: mistral-smal-latest"
    assert emulator_client.get(JOBS).json()["total"] == 0  # nothing created


def test_a_model_that_does_not_serve_the_endpoint_is_refused(
    emulator_client: httpx.Client,
) -> None:
    body = {"endpoint": CHAT, "model": "mistral-embed", "requests": [chat_request("0")]}
    message = _invalid_model(emulator_client.post(JOBS, json=body))
    assert "mistral-embed does not serve /v1/chat/completions" in message
    assert "/v1/embeddings" in message
    ocr = {"endpoint": "/v1/ocr", "model": "mistral-small-latest", "requests": [chat_request("0")]}
    _invalid_model(emulator_client.post(JOBS, json=ocr))


def test_a_malformed_body_is_still_a_422_first(emulator_client: httpx.Client) -> None:
    response = emulator_client.post(JOBS, json={"endpoint": CHAT, "model": "nope"})
    assert response.status_code == 422  # requests/input_files missing: structure first


def test_fine_tuned_models_and_agents_pass(emulator_client: httpx.Client) -> None:
    for endpoint in (CHAT, "/v1/classifications"):
        job = create_job(
            emulator_client,
            endpoint=endpoint,
            model="ft:ministral-3b-latest:abc123:20250401:f00d",
            requests=[{"custom_id": "0", "body": {"input": "x"}}],
        )
        assert job["model"].startswith("ft:")
    agent = create_job(emulator_client, model=None, agent_id="ag_0123", endpoint="/v1/ocr")
    assert agent["agent_id"] == "ag_0123"
    with pytest.raises(AssertionError):  # "ft:" alone is no model
        create_job(emulator_client, model="ft:")


def test_every_endpoint_has_a_model_that_serves_it() -> None:
    served = {endpoint for model in catalogue.MODELS for endpoint in model.endpoints}
    # Classifications need a fine-tuned classifier (ft:classifier:...): no base model.
    assert served == set(ENDPOINTS) - {"/v1/classifications", "/v1/chat/classifications"}
    names = [name for model in catalogue.MODELS for name in model.names]
    assert len(names) == len(set(names)), "a name belongs to one model"
