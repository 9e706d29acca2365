"""Helpers of the cost tests: request lines and a counter whose counts are obvious."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal


def line(body: Any, custom_id: str = "0") -> bytes:
    """One JSONL request line, as every request source yields it."""
    return json.dumps({"custom_id": custom_id, "body": body}, ensure_ascii=False).encode() + b"\n"


def lines(bodies: Iterable[Any]) -> list[bytes]:
    return [line(body, str(i)) for i, body in enumerate(bodies)]


def chat(*contents: str, max_tokens: int | None = 100, **extra: Any) -> dict[str, Any]:
    """A chat body: the contents alternate user/assistant, starting with user."""
    roles = ["user", "assistant"]
    body: dict[str, Any] = {
        "messages": [{"role": roles[i % 2], "content": c} for i, c in enumerate(contents)],
        **extra,
    }
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return body


class WordCounter:
    """One token per whitespace-separated word: estimates become easy to predict."""

    method: Literal["exact", "heuristic"] = "heuristic"
    name = "words"

    def count_text(self, text: str) -> int:
        return len(text.split())

    def count_chat(self, messages: list[dict[str, Any]], tools: Any) -> int | None:
        return None

    def count_fim(self, prompt: str, suffix: str) -> int | None:
        return None


class ExactWordCounter(WordCounter):
    """Claims exactness, and applies a made-up template: 10 tokens plus the words."""

    method: Literal["exact", "heuristic"] = "exact"
    name = "exact-words"

    def count_chat(self, messages: list[dict[str, Any]], tools: Any) -> int | None:
        if messages[-1].get("role") == "assistant" and not messages[-1].get("prefix"):
            return None  # refused, like mistral-common refuses it
        words = 0
        for m in messages:
            content = m.get("content")
            if isinstance(content, str):
                words += len(content.split())
            elif isinstance(content, list):
                words += sum(len(p["text"].split()) for p in content)
        return 10 + words

    def count_fim(self, prompt: str, suffix: str) -> int | None:
        return 20 + len(prompt.split()) + len(suffix.split())
