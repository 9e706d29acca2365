"""Small helpers for the emulator tests (request bodies, uploads, assertions)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

JOBS = "/v1/batch/jobs"
FILES = "/v1/files"
CHAT = "/v1/chat/completions"


def chat_request(custom_id: str, text: str = "Best French cheese?", **extra: Any) -> dict[str, Any]:
    body = {"messages": [{"role": "user", "content": text}], **extra}
    return {"custom_id": custom_id, "body": body}


def bad_chat_request(custom_id: str) -> dict[str, Any]:
    """A request the chat endpoint rejects (no messages): it lands in the error file."""
    return {"custom_id": custom_id, "body": {"max_tokens": 10}}


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def upload(
    client: httpx.Client,
    content: bytes,
    *,
    filename: str = "input.jsonl",
    purpose: str = "batch",
    **fields: str,
) -> dict[str, Any]:
    response = client.post(
        FILES, files={"file": (filename, content)}, data={"purpose": purpose, **fields}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def create_job(
    client: httpx.Client,
    *,
    requests: list[dict[str, Any]] | None = None,
    input_files: list[str] | None = None,
    endpoint: str = CHAT,
    model: str | None = "mistral-small-latest",
    metadata: dict[str, str] | None = None,
    expect: int = 200,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {"endpoint": endpoint, **extra}
    if model is not None:
        body["model"] = model
    if requests is not None:
        body["requests"] = requests
    if input_files is not None:
        body["input_files"] = input_files
    if metadata is not None:
        body["metadata"] = metadata
    if requests is None and input_files is None and "requests" not in extra:
        body["requests"] = [chat_request("0")]
    response = client.post(JOBS, json=body)
    assert response.status_code == expect, response.text
    result: dict[str, Any] = response.json()
    return result


def get_job(client: httpx.Client, job_id: str, **params: str) -> dict[str, Any]:
    response = client.get(f"{JOBS}/{job_id}", params=params)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def download_lines(client: httpx.Client, file_id: str) -> list[dict[str, Any]]:
    response = client.get(f"{FILES}/{file_id}/content")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    return [json.loads(line) for line in response.text.splitlines()]


def unknown_id() -> str:
    return str(uuid.uuid4())


def locs(response: httpx.Response) -> list[list[Any]]:
    """The ``loc`` of every item of a 422's detail."""
    assert response.status_code == 422, response.text
    return [item["loc"] for item in response.json()["detail"]]
