"""Deterministic per-endpoint results: what each batch request "returns".

Two pure functions per endpoint: :func:`problem` says whether a request body is one the
real endpoint would reject (it then lands in the error file with status 400), and
:func:`respond` builds a realistic response body from the request alone, so the same input
always gives byte-identical result files in every process.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

JsonObject = dict[str, Any]

_WORD = re.compile(r"\w+|[^\w\s]")
EMBEDDING_DIMENSION = 1024
MODERATION_CATEGORIES = (
    "sexual",
    "hate_and_discrimination",
    "violence_and_threats",
    "dangerous_and_criminal_content",
    "selfharm",
    "health",
    "financial",
    "law",
    "pii",
)
_ROLES = ("system", "user", "assistant", "tool")


def digest(*parts: object) -> str:
    """A stable hex digest of some values (the seed of every synthetic value)."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def stable_id(prefix: str, *parts: object) -> str:
    return prefix + digest(*parts)[:24]


def tokens(text: str) -> int:
    """A token count in the right ballpark: words and punctuation marks."""
    return len(_WORD.findall(text))


def _text_of(content: object) -> str:
    """Text of a message content: a string or a list of chunks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for chunk in content:
            if isinstance(chunk, dict) and isinstance(chunk.get("text"), str):
                parts.append(chunk["text"])
        return " ".join(parts)
    return ""


def _is_str_or_str_list(value: object) -> bool:
    if isinstance(value, str):
        return True
    return (
        isinstance(value, list) and len(value) > 0 and all(isinstance(item, str) for item in value)
    )


def _messages_problem(messages: object, field: str = "messages") -> str | None:
    if not isinstance(messages, list) or not messages:
        return f"'{field}' must be a non-empty list of messages"
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"'{field}[{index}]' must be an object"
        if message.get("role") not in _ROLES:
            return f"'{field}[{index}].role' must be one of {', '.join(_ROLES)}"
    return None


def _missing(field: str) -> str:
    return f"'{field}' is required"


def _problem_chat(body: JsonObject) -> str | None:
    if "messages" not in body:
        return _missing("messages")
    return _messages_problem(body["messages"])


def _problem_inputs(body: JsonObject) -> str | None:
    if "input" not in body:
        return _missing("input")
    if not _is_str_or_str_list(body["input"]):
        return "'input' must be a string or a non-empty list of strings"
    return None


def _problem_fim(body: JsonObject) -> str | None:
    if not isinstance(body.get("prompt"), str):
        return _missing("prompt") if "prompt" not in body else "'prompt' must be a string"
    return None


def _problem_chat_input(body: JsonObject) -> str | None:
    """Chat moderations/classifications take ``input``: a conversation or a list of them."""
    if "input" not in body:
        return _missing("input")
    value = body["input"]
    if isinstance(value, dict) and "messages" in value:
        return _messages_problem(value["messages"], "input.messages")
    if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
        for conversation in value:
            found = _messages_problem(conversation, "input[]")
            if found:
                return found
        return None
    return _messages_problem(value, "input")


def _problem_ocr(body: JsonObject) -> str | None:
    document = body.get("document")
    if document is None:
        return _missing("document")
    if not isinstance(document, dict) or document.get("type") not in (
        "document_url",
        "image_url",
        "file",
    ):
        return "'document' must be an object of type document_url, image_url or file"
    return None


def _problem_conversations(body: JsonObject) -> str | None:
    if "inputs" not in body:
        return _missing("inputs")
    inputs = body["inputs"]
    if isinstance(inputs, str) and inputs:
        return None
    if isinstance(inputs, list) and inputs and all(isinstance(x, dict) for x in inputs):
        return None
    return "'inputs' must be a non-empty string or list of entries"


def _problem_transcription(body: JsonObject) -> str | None:
    if not any(isinstance(body.get(key), str) for key in ("file_url", "file_id")):
        return "one of 'file_url' or 'file_id' is required"
    return None


_PROBLEMS: dict[str, Callable[[JsonObject], str | None]] = {
    "/v1/chat/completions": _problem_chat,
    "/v1/embeddings": _problem_inputs,
    "/v1/fim/completions": _problem_fim,
    "/v1/moderations": _problem_inputs,
    "/v1/chat/moderations": _problem_chat_input,
    "/v1/ocr": _problem_ocr,
    "/v1/classifications": _problem_inputs,
    "/v1/chat/classifications": _problem_chat_input,
    "/v1/conversations": _problem_conversations,
    "/v1/audio/transcriptions": _problem_transcription,
}


def problem(endpoint: str, body: JsonObject) -> str | None:
    """Why the endpoint would reject this body (a 400 in the error file), or None."""
    return _PROBLEMS[endpoint](body)


# --- responses -----------------------------------------------------------------------------


def _usage(prompt: int, completion: int) -> JsonObject:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _reply(text: str, max_tokens: object) -> tuple[str, str]:
    """The assistant's answer and finish reason, cut at ``max_tokens`` like a real model."""
    words = f"You asked: {text}".split() if text else ["Hello!"]
    limit = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None
    if limit is not None and len(words) > limit:
        return " ".join(words[:limit]), "length"
    return " ".join(words), "stop"


def _chat_completion(ctx: _Context, content: str, prompt_tokens: int) -> JsonObject:
    reply, finish = _reply(content, ctx.body.get("max_tokens"))
    return {
        "id": digest(ctx.key, "completion")[:32],
        "object": "chat.completion",
        "model": ctx.model,
        "created": ctx.created,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply, "tool_calls": None},
                "finish_reason": finish,
            }
        ],
        "usage": _usage(prompt_tokens, tokens(reply)),
    }


class _Context:
    def __init__(self, body: JsonObject, model: str, key: str, created: int) -> None:
        self.body = body
        self.model = model
        self.key = key  # unique per request of a job: seeds ids and values
        self.created = created


def _respond_chat(ctx: _Context) -> JsonObject:
    messages = ctx.body["messages"]
    last_user = ""
    prompt_tokens = 0
    for message in messages:
        text = _text_of(message.get("content"))
        prompt_tokens += tokens(text) + 4
        if message.get("role") == "user":
            last_user = text
    return _chat_completion(ctx, last_user, prompt_tokens)


def _respond_fim(ctx: _Context) -> JsonObject:
    prompt = ctx.body["prompt"]
    suffix = ctx.body.get("suffix") if isinstance(ctx.body.get("suffix"), str) else ""
    completion = f"    return {int(digest(prompt, suffix)[:6], 16) % 1000}\n"
    body = _chat_completion(ctx, "", tokens(prompt) + tokens(suffix or ""))
    body["choices"][0]["message"]["content"] = completion
    body["choices"][0]["finish_reason"] = "stop"
    body["usage"] = _usage(tokens(prompt) + tokens(suffix or ""), tokens(completion))
    return body


def _inputs(value: object) -> list[str]:
    return [value] if isinstance(value, str) else [str(item) for item in value]  # type: ignore[attr-defined]


def _vector(text: str, dimension: int) -> list[float]:
    """A unit vector seeded by the text: equal texts embed equally in every process."""
    rng = random.Random(digest("embedding", text))
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimension)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [round(x / norm, 6) for x in raw]


def _respond_embeddings(ctx: _Context) -> JsonObject:
    texts = _inputs(ctx.body["input"])
    dimension = ctx.body.get("output_dimension")
    if not isinstance(dimension, int) or not 1 <= dimension <= 4096:
        dimension = EMBEDDING_DIMENSION
    used = sum(tokens(text) for text in texts)
    return {
        "id": digest(ctx.key, "embedding")[:32],
        "object": "list",
        "model": ctx.model,
        "data": [
            {"object": "embedding", "embedding": _vector(text, dimension), "index": index}
            for index, text in enumerate(texts)
        ],
        "usage": {"prompt_tokens": used, "completion_tokens": 0, "total_tokens": used},
    }


def _scores(text: str, labels: tuple[str, ...], scale: float) -> dict[str, float]:
    rng = random.Random(digest("scores", text))
    return {label: round(rng.random() * scale, 6) for label in labels}


def _moderation(text: str) -> JsonObject:
    scores = _scores(text, MODERATION_CATEGORIES, 0.05)
    return {
        "categories": {name: score > 0.5 for name, score in scores.items()},
        "category_scores": scores,
    }


def _conversations_of(value: object) -> list[list[JsonObject]]:
    if isinstance(value, dict):
        return [value["messages"]]
    if isinstance(value, list) and value and all(isinstance(item, list) for item in value):
        return list(value)
    return [value]  # type: ignore[list-item]


def _conversation_text(messages: list[JsonObject]) -> str:
    return " ".join(_text_of(message.get("content")) for message in messages)


def _respond_moderations(ctx: _Context) -> JsonObject:
    texts = _inputs(ctx.body["input"])
    return {
        "id": digest(ctx.key, "moderation")[:32],
        "model": ctx.model,
        "results": [_moderation(text) for text in texts],
        "usage": _usage(sum(tokens(t) for t in texts), 0),
    }


def _respond_chat_moderations(ctx: _Context) -> JsonObject:
    texts = [_conversation_text(c) for c in _conversations_of(ctx.body["input"])]
    return {
        "id": digest(ctx.key, "moderation")[:32],
        "model": ctx.model,
        "results": [_moderation(text) for text in texts],
        "usage": _usage(sum(tokens(t) for t in texts), 0),
    }


def _classification(text: str) -> JsonObject:
    positive = _scores(text, ("positive",), 1.0)["positive"]
    return {
        "sentiment": {
            "scores": {"positive": positive, "negative": round(1.0 - positive, 6)},
        }
    }


def _respond_classifications(ctx: _Context) -> JsonObject:
    texts = _inputs(ctx.body["input"])
    return {
        "id": digest(ctx.key, "classification")[:32],
        "model": ctx.model,
        "results": [_classification(text) for text in texts],
    }


def _respond_chat_classifications(ctx: _Context) -> JsonObject:
    texts = [_conversation_text(c) for c in _conversations_of(ctx.body["input"])]
    return {
        "id": digest(ctx.key, "classification")[:32],
        "model": ctx.model,
        "results": [_classification(text) for text in texts],
    }


def _respond_ocr(ctx: _Context) -> JsonObject:
    document = ctx.body["document"]
    where = document.get("document_url") or document.get("image_url") or document.get("file_id")
    pages = 1 + int(digest(where)[:2], 16) % 3
    return {
        "model": ctx.model,
        "pages": [
            {
                "index": index,
                "markdown": f"# Page {index + 1}\n\nText recognised in {where}.",
                "images": [],
                "dimensions": {"dpi": 200, "height": 2200, "width": 1700},
            }
            for index in range(pages)
        ],
        "document_annotation": None,
        "usage_info": {"pages_processed": pages, "doc_size_bytes": None},
    }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _respond_conversations(ctx: _Context) -> JsonObject:
    inputs = ctx.body["inputs"]
    text = inputs if isinstance(inputs, str) else _text_of(inputs[-1].get("content"))
    reply, _ = _reply(text, None)
    prompt = (
        tokens(text)
        if isinstance(inputs, str)
        else sum(tokens(_text_of(entry.get("content"))) for entry in inputs)
    )
    return {
        "object": "conversation.response",
        "conversation_id": stable_id("conv_", ctx.key),
        "outputs": [
            {
                "object": "entry",
                "type": "message.output",
                "created_at": _iso(ctx.created),
                "completed_at": _iso(ctx.created),
                "id": stable_id("msg_", ctx.key),
                "agent_id": None,
                "model": ctx.model,
                "role": "assistant",
                "content": reply,
            }
        ],
        "usage": {
            **_usage(prompt, tokens(reply)),
            "connector_tokens": None,
            "connectors": None,
        },
    }


def _respond_transcription(ctx: _Context) -> JsonObject:
    source = ctx.body.get("file_url") or ctx.body.get("file_id")
    seconds = 5 + int(digest(source)[:4], 16) % 120
    text = f"Transcript of {source}."
    return {
        "model": ctx.model,
        "text": text,
        "language": ctx.body.get("language") if isinstance(ctx.body.get("language"), str) else "en",
        "segments": [],
        "usage": {
            "prompt_audio_seconds": seconds,
            "prompt_tokens": seconds * 4,
            "completion_tokens": tokens(text),
            "total_tokens": seconds * 4 + tokens(text),
        },
    }


_RESPONDERS: dict[str, Callable[[_Context], JsonObject]] = {
    "/v1/chat/completions": _respond_chat,
    "/v1/embeddings": _respond_embeddings,
    "/v1/fim/completions": _respond_fim,
    "/v1/moderations": _respond_moderations,
    "/v1/chat/moderations": _respond_chat_moderations,
    "/v1/ocr": _respond_ocr,
    "/v1/classifications": _respond_classifications,
    "/v1/chat/classifications": _respond_chat_classifications,
    "/v1/conversations": _respond_conversations,
    "/v1/audio/transcriptions": _respond_transcription,
}


def respond(endpoint: str, body: JsonObject, *, model: str, key: str, created: int) -> JsonObject:
    """The response body for a valid request (``problem`` returned None)."""
    return _RESPONDERS[endpoint](_Context(body, model, key, created))


def result_line(
    *, key: str, custom_id: str | None, status_code: int, body: JsonObject
) -> JsonObject:
    """One line of an output or error file, in Mistral's result envelope."""
    return {
        "id": stable_id("batch-", key),
        "custom_id": custom_id,
        "response": {"status_code": status_code, "body": body},
        "error": None,
    }


def error_body(message: str) -> JsonObject:
    return {
        "object": "error",
        "message": message,
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
