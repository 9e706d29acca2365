"""A transport that plays a script of answers and failures, recording every request."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import httpx

Answer = Callable[[httpx.Request], httpx.Response]
Step = Answer | BaseException

BASE = "http://127.0.0.1:9"
JOB: dict[str, Any] = {
    "id": "job-1",
    "object": "batch",
    "input_files": [],
    "endpoint": "/v1/chat/completions",
    "errors": [],
    "status": "QUEUED",
    "created_at": 1,
    "total_requests": 0,
    "completed_requests": 0,
    "succeeded_requests": 0,
    "failed_requests": 0,
    "model": "m",
}
FILE: dict[str, Any] = {
    "id": "file-1",
    "object": "file",
    "bytes": 3,
    "created_at": 1,
    "filename": "in.jsonl",
    "purpose": "batch",
    "sample_type": "batch_request",
    "source": "upload",
    "deleted": False,
}


def reply(
    status: int = 200,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
) -> Answer:
    """A fresh response per call (a Response object cannot be sent twice)."""

    def answer(request: httpx.Request) -> httpx.Response:
        if content is not None:
            return httpx.Response(status, content=content, headers=headers)
        payload = JOB if body is None else body
        return httpx.Response(status, content=json.dumps(payload).encode(), headers=headers)

    return answer


class Scripted(httpx.BaseTransport):
    """Answers requests with ``steps`` in order (then ``then``), raising exceptions given."""

    def __init__(self, *steps: Step, then: Step | None = None) -> None:
        self.steps = list(steps)
        self.then = then
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if self.steps:
            step = self.steps.pop(0)
        elif self.then is not None:
            step = self.then
        else:
            raise AssertionError(f"unexpected request {request.method} {request.url}")
        if isinstance(step, BaseException):
            raise step
        return step(request)

    @property
    def calls(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]
