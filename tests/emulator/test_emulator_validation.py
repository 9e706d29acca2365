"""Create bodies are validated like the real API: 422, FastAPI-style, every problem at once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from emulator_support import (
    CHAT,
    FILES,
    JOBS,
    bad_chat_request,
    chat_request,
    jsonl,
    locs,
    unknown_id,
    upload,
)

GOOD: dict[str, Any] = {
    "endpoint": CHAT,
    "model": "mistral-small-latest",
    "requests": [chat_request("0")],
}


def post(client: httpx.Client, **changes: Any) -> httpx.Response:
    body = {**GOOD, **changes}
    for key in [k for k, v in changes.items() if v is _DROP]:
        del body[key]
    return client.post(JOBS, json=body)


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "loc", "kind"),
    [
        ({"endpoint": _DROP}, ["body", "endpoint"], "missing"),
        ({"endpoint": "/v1/nope"}, ["body", "endpoint"], "enum"),
        ({"requests": _DROP}, ["body"], "value_error"),  # neither input source
        ({"input_files": [unknown_id()]}, ["body"], "value_error"),  # both sources
        ({"requests": []}, ["body", "requests"], "too_short"),
        ({"requests": "nope"}, ["body", "requests"], "list_type"),
        ({"requests": [chat_request("0")] * 10_001}, ["body", "requests"], "too_long"),
        ({"requests": ["text"]}, ["body", "requests", 0], "model_attributes_type"),
        ({"requests": [{"custom_id": "0"}]}, ["body", "requests", 0, "body"], "missing"),
        ({"requests": [{"body": []}]}, ["body", "requests", 0, "body"], "dict_type"),
        (
            {"requests": [{"custom_id": 7, "body": {}}]},
            ["body", "requests", 0, "custom_id"],
            "string_type",
        ),
        ({"metadata": {"": "x"}}, ["body", "metadata", "", "[key]"], "string_too_short"),
        ({"metadata": {"k" * 33: "x"}}, ["body", "metadata", "k" * 33, "[key]"], "string_too_long"),
        ({"metadata": {"k": ""}}, ["body", "metadata", "k"], "string_too_short"),
        ({"metadata": {"k": "v" * 513}}, ["body", "metadata", "k"], "string_too_long"),
        ({"metadata": {"k": 1}}, ["body", "metadata", "k"], "string_type"),
        ({"metadata": ["k"]}, ["body", "metadata"], "dict_type"),
        ({"timeout_hours": 0}, ["body", "timeout_hours"], "greater_than_equal"),
        ({"timeout_hours": 169}, ["body", "timeout_hours"], "less_than_equal"),
        ({"timeout_hours": 1.5}, ["body", "timeout_hours"], "int_type"),
        ({"timeout_hours": "24"}, ["body", "timeout_hours"], "int_type"),
        ({"model": _DROP}, ["body"], "value_error"),  # neither model nor agent_id
        ({"agent_id": "ag_1"}, ["body"], "value_error"),  # both
        ({"model": 3}, ["body", "model"], "string_type"),
        (
            {"input_files": ["not-a-uuid"], "requests": _DROP},
            ["body", "input_files", 0],
            "uuid_parsing",
        ),
        ({"input_files": [], "requests": _DROP}, ["body", "input_files"], "too_short"),
    ],
)
def test_each_rule_is_a_422_at_its_loc(
    emulator_client: httpx.Client, changes: dict[str, Any], loc: list[Any], kind: str
) -> None:
    response = post(emulator_client, **changes)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert [loc, kind] in [[item["loc"], item["type"]] for item in detail]
    for item in detail:
        assert set(item) >= {"type", "loc", "msg", "input"}
        assert isinstance(item["msg"], str) and item["msg"]
    assert emulator_client.get(JOBS).json()["total"] == 0  # nothing was created


def test_limits_themselves_are_accepted(emulator_client: httpx.Client) -> None:
    response = post(
        emulator_client,
        requests=[chat_request(str(i)) for i in range(10_000)],
        metadata={"k" * 32: "v" * 512, "x": "y"},
        timeout_hours=168,
    )
    assert response.status_code == 200, response.text[:500]
    assert response.json()["total_requests"] == 10_000
    assert post(emulator_client, timeout_hours=1).status_code == 200


def test_timeout_defaults_to_24_and_agent_jobs_are_accepted(emulator_client: httpx.Client) -> None:
    assert post(emulator_client, timeout_hours=_DROP).status_code == 200
    agent = post(emulator_client, model=_DROP, agent_id="ag_123")
    assert agent.status_code == 200
    assert agent.json()["agent_id"] == "ag_123" and agent.json()["model"] is None


def test_every_problem_is_reported_at_once(emulator_client: httpx.Client) -> None:
    response = post(
        emulator_client, endpoint="/v1/nope", timeout_hours=0, metadata={"k": 1}, model=_DROP
    )
    assert sorted(map(str, locs(response))) == sorted(
        map(
            str,
            [
                ["body", "endpoint"],
                ["body"],
                ["body", "metadata", "k"],
                ["body", "timeout_hours"],
            ],
        )
    )


def test_a_body_that_is_not_json_or_not_an_object(emulator_client: httpx.Client) -> None:
    broken = emulator_client.post(
        JOBS, content=b"{nope", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["type"] == "json_invalid"
    listed = emulator_client.post(JOBS, json=[GOOD])
    assert locs(listed) == [["body"]]


# --- input files ---------------------------------------------------------------------------


def test_unknown_input_file_is_a_422_naming_its_index(emulator_client: httpx.Client) -> None:
    good = upload(emulator_client, jsonl([chat_request("0")]))
    missing = unknown_id()
    response = post(emulator_client, requests=_DROP, input_files=[good["id"], missing])
    assert locs(response) == [["body", "input_files", 1]]
    assert missing in response.json()["detail"][0]["msg"]


def test_input_file_must_have_purpose_batch(emulator_client: httpx.Client) -> None:
    tuning = upload(emulator_client, jsonl([chat_request("0")]), purpose="fine-tune")
    response = post(emulator_client, requests=_DROP, input_files=[tuning["id"]])
    assert locs(response) == [["body", "input_files", 0]]
    assert "purpose" in response.json()["detail"][0]["msg"]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b'{"custom_id": "0", "body": {}}\nnot json\n', "line 2"),
        (b'["a list"]\n', "line 1"),
        (b'{"custom_id": "0"}\n', "'body'"),
        (b'{"custom_id": "0", "body": "text"}\n', "'body'"),
        (b'{"custom_id": 0, "body": {}}\n', "'custom_id'"),
        (b'{"custom_id": "0", "body": {"x": "\xff"}}\n', "UTF-8"),
        (b"\n\n", "no requests"),
    ],
)
def test_input_file_must_be_batch_jsonl(
    emulator_client: httpx.Client, content: bytes, needle: str
) -> None:
    bad = upload(emulator_client, content)
    response = post(emulator_client, requests=_DROP, input_files=[bad["id"]])
    assert response.status_code == 422, response.text
    assert needle in response.json()["detail"][0]["msg"]
    # Nothing of the failed create is left behind.
    assert emulator_client.get(JOBS).json()["total"] == 0


def test_malformed_bodies_are_accepted_and_counted_at_create(
    emulator_client: httpx.Client,
) -> None:
    """A body the endpoint rejects is not a 422: it becomes a failed request (error file)."""
    content = jsonl([chat_request("0"), bad_chat_request("1"), chat_request("2")])
    response = post(
        emulator_client, requests=_DROP, input_files=[upload(emulator_client, content)["id"]]
    )
    assert response.status_code == 200
    assert response.json()["total_requests"] == 3


def test_upload_validation(emulator_client: httpx.Client) -> None:
    no_file = emulator_client.post(FILES, data={"purpose": "batch"}, files={"other": ("a", b"x")})
    assert locs(no_file) == [["body", "file"]]
    wrong = emulator_client.post(
        FILES,
        files={"file": ("a.jsonl", b"{}\n")},
        data={"purpose": "nope", "visibility": "everyone", "expiry": "soon"},
    )
    assert sorted(map(str, locs(wrong))) == sorted(
        map(str, [["body", "purpose"], ["body", "visibility"], ["body", "expiry"]])
    )
    assert emulator_client.get(FILES).json()["total"] == 0
