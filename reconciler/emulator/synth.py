"""Deterministic per-endpoint results: what each batch request "returns".

Two pure functions per endpoint: :func:`problem` says whether a request body is one the
real endpoint would reject (it then lands in the error file with status 400), and
:func:`respond` builds a realistic response body from the request alone, so the same input
always gives byte-identical result files in every process.

Token counts (``usage``) follow one documented rule, so that a cost estimate can be compared
with these "actuals": a text of N characters (code points) is ``ceil(N / 4)`` tokens
(:func:`tokens`); a chat message adds ``MESSAGE_OVERHEAD`` tokens (role and control tokens),
tool definitions count as the characters of their JSON. A completion's length is drawn from
the request (between ``REPLY_MIN`` and ``REPLY_MAX`` tokens) and cut at the request's
``max_tokens`` (``finish_reason: "length"``), and its text has exactly the tokens reported.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

JsonObject = dict[str, Any]

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4  # tokens per chat message: role and control tokens
REPLY_MIN = 16  # a completion's natural length, in tokens, when max_tokens does not cut it
REPLY_MAX = 200
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
    """Tokens of a text: one per ``CHARS_PER_TOKEN`` characters, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


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


def _conversations(value: object) -> list[object] | None:
    """The conversations of a chat moderation/classification ``input``, in every form the
    SDK sends: ``{"messages": [...]}``, ``[{"messages": [...]}, ...]``, ``[[...], ...]`` or
    one conversation as a list of messages. None: none of these forms."""
    if isinstance(value, dict):
        return [value.get("messages")] if "messages" in value else None
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(item, dict) and "messages" in item for item in value):
        return [item["messages"] for item in value]
    if all(isinstance(item, list) for item in value):
        return list(value)
    return [value]


def _problem_chat_input(body: JsonObject) -> str | None:
    """Chat moderations/classifications take ``input``: a conversation or a list of them."""
    if "input" not in body:
        return _missing("input")
    conversations = _conversations(body["input"])
    if conversations is None:
        return "'input' must be a conversation ({\"messages\": [...]}) or a list of them"
    for conversation in conversations:
        found = _messages_problem(conversation, "input.messages")
        if found:
            return found
    return None


_DOCUMENT_KINDS = ("document_url", "image_url", "file")


def _document_source(document: JsonObject) -> str | None:
    """Where an OCR document is: its URL or file id (None: not a valid document).

    ``type`` is optional, as in the SDK's chunk types and the docs' examples
    (``{"document_url": "..."}``); when given it must agree with the field present."""
    kind = document.get("type")
    for name, field in (
        ("document_url", "document_url"),
        ("image_url", "image_url"),
        ("file", "file_id"),
    ):
        if kind not in (None, name):
            continue
        value = document.get(field)
        if name == "image_url" and isinstance(value, dict):
            value = value.get("url")
        if isinstance(value, str) and value:
            return value
    return None


def _problem_ocr(body: JsonObject) -> str | None:
    document = body.get("document")
    if document is None:
        return _missing("document")
    if not isinstance(document, dict):
        return "'document' must be an object with a document_url, an image_url or a file_id"
    if document.get("type") not in (None, *_DOCUMENT_KINDS):
        return "'document.type' must be document_url, image_url or file"
    if _document_source(document) is None:
        return "'document' must have a document_url, an image_url or a file_id (matching its type)"
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


def _usage(prompt: int, completion: int, **extra: object) -> JsonObject:
    """``usage`` with every key of the SDK's ``UsageInfo`` (those a batch has no value for
    are null, as the API sends them)."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_audio_seconds": None,
        "service_tier": None,
        **extra,
    }


def _limit(max_tokens: object) -> int | None:
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        return None
    return max_tokens


def _sized(seed: str, prefix: str, length: int) -> str:
    """A text of exactly ``length`` tokens: the prefix, then deterministic filler, cut."""
    chars = length * CHARS_PER_TOKEN
    text = prefix
    filler = (" lorem", " ipsum", " dolor", " sit", " amet", " consectetur", " adipiscing")
    rng = random.Random(seed)
    while len(text) < chars:
        text += rng.choice(filler)
    return text[:chars]


def reply_tokens(seed: str) -> int:
    """The natural length of a completion (before ``max_tokens``), from the request."""
    return REPLY_MIN + int(seed[:8], 16) % (REPLY_MAX - REPLY_MIN + 1)


def _reply(ctx: _Context, text: str) -> tuple[str, str, int]:
    """The assistant's answer, its finish reason and its tokens, cut at ``max_tokens``."""
    seed = digest(ctx.body)
    natural = reply_tokens(seed)
    limit = _limit(ctx.body.get("max_tokens"))
    length, finish = (
        (limit, "length") if limit is not None and limit < natural else (natural, "stop")
    )
    prefix = f"You asked: {text}" if text else "Hello!"
    return _sized(seed, prefix, length), finish, length


def _chat_completion(ctx: _Context, content: str, prompt_tokens: int) -> JsonObject:
    reply, finish, used = _reply(ctx, content)
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
        "usage": _usage(prompt_tokens, used),
    }


class _Context:
    def __init__(self, body: JsonObject, model: str, key: str, created: int) -> None:
        self.body = body
        self.model = model
        self.key = key  # unique per request of a job: seeds ids and values
        self.created = created


def _json_tokens(value: object) -> int:
    if value is None:
        return 0
    return tokens(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def chat_prompt_tokens(messages: list[JsonObject], tools: object = None) -> int:
    """Prompt tokens of a conversation: its texts, ``MESSAGE_OVERHEAD`` per message, tools."""
    total = _json_tokens(tools)
    for message in messages:
        total += MESSAGE_OVERHEAD + tokens(_text_of(message.get("content")))
    return total


def _respond_chat(ctx: _Context) -> JsonObject:
    messages = ctx.body["messages"]
    last_user = ""
    for message in messages:
        if message.get("role") == "user":
            last_user = _text_of(message.get("content"))
    prompt = chat_prompt_tokens(messages, ctx.body.get("tools"))
    return _chat_completion(ctx, last_user, prompt)


def _respond_fim(ctx: _Context) -> JsonObject:
    prompt = ctx.body["prompt"]
    suffix = ctx.body.get("suffix") if isinstance(ctx.body.get("suffix"), str) else ""
    completion = f"    return {int(digest(prompt, suffix)[:6], 16) % 1000}\n"
    finish = "stop"
    limit = _limit(ctx.body.get("max_tokens"))
    if limit is not None and tokens(completion) > limit:
        completion, finish = completion[: limit * CHARS_PER_TOKEN], "length"
    body = _chat_completion(ctx, "", 0)
    body["choices"][0]["message"]["content"] = completion
    body["choices"][0]["finish_reason"] = finish
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
    if isinstance(dimension, bool) or not isinstance(dimension, int) or not 1 <= dimension <= 4096:
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
        # The docs' batch example also shows these two, null.
        "usage": _usage(used, 0, prompt_token_details=None, request_count=None),
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


def _conversation_messages(value: object) -> list[list[JsonObject]]:
    return [c for c in _conversations(value) or [] if isinstance(c, list)]


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
    conversations = _conversation_messages(ctx.body["input"])
    return {
        "id": digest(ctx.key, "moderation")[:32],
        "model": ctx.model,
        "results": [_moderation(_conversation_text(c)) for c in conversations],
        "usage": _usage(sum(chat_prompt_tokens(c) for c in conversations), 0),
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
    texts = [_conversation_text(c) for c in _conversation_messages(ctx.body["input"])]
    return {
        "id": digest(ctx.key, "classification")[:32],
        "model": ctx.model,
        "results": [_classification(text) for text in texts],
    }


def _respond_ocr(ctx: _Context) -> JsonObject:
    where = _document_source(ctx.body["document"]) or ""
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
        "usage_info": {
            "pages_processed": pages,
            "doc_size_bytes": 40_000 + int(digest(where)[2:8], 16) % 4_000_000,
        },
    }


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def _respond_conversations(ctx: _Context) -> JsonObject:
    inputs = ctx.body["inputs"]
    text = inputs if isinstance(inputs, str) else _text_of(inputs[-1].get("content"))
    reply, _, used = _reply(ctx, text)
    if isinstance(inputs, str):
        prompt = MESSAGE_OVERHEAD + tokens(inputs)
    else:
        prompt = chat_prompt_tokens(inputs)
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
            "prompt_tokens": prompt,
            "completion_tokens": used,
            "total_tokens": prompt + used,
            "connector_tokens": None,
            "connectors": None,
        },
    }


AUDIO_TOKENS_PER_SECOND = 4  # prompt tokens of a transcription, per second of audio


def _respond_transcription(ctx: _Context) -> JsonObject:
    source = ctx.body.get("file_url") or ctx.body.get("file_id")
    seconds = 5 + int(digest(source)[:4], 16) % 120
    text = f"Transcript of {source}."
    prompt = seconds * AUDIO_TOKENS_PER_SECOND
    return {
        "model": ctx.model,
        "text": text,
        "language": ctx.body.get("language") if isinstance(ctx.body.get("language"), str) else "en",
        "segments": [],
        "usage": {**_usage(prompt, tokens(text)), "prompt_audio_seconds": seconds},
        "finish_reason": None,  # the docs' batch example: the key is there, null
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


def line_id(job_id: str, index: int) -> str:
    """A result line's id, shaped like the API's: ``batch-<8 hex of the job>-<n>-<uuid>``
    (n: the request's 1-based position in the job)."""
    unique = uuid.UUID(digest(job_id, index)[:32], version=4)
    return f"batch-{job_id.replace('-', '')[:8]}-{index + 1}-{unique}"


def result_line(
    *, job_id: str, index: int, custom_id: str | None, status_code: int, body: JsonObject
) -> JsonObject:
    """One line of an output or error file, in Mistral's result envelope."""
    return {
        "id": line_id(job_id, index),
        "custom_id": custom_id,
        "response": {"status_code": status_code, "body": body},
        "error": None,
    }


def error_body(message: str, kind: str = "invalid_request_error") -> JsonObject:
    return {
        "object": "error",
        "message": message,
        "type": kind,
        "param": None,
        "code": None,
    }
