"""Requests -> tokens: what a stream of batch requests will consume, before it runs.

The input is what every request source produces (local JSONL inputs, inline requests,
generated prompts, a shard, a retry subset): an iterable of JSONL lines, ``bytes`` each
ending in ``\\n``, each ``{"custom_id": ..., "body": {...}}``. It is read once, one line at
a time, so memory does not depend on its length. The result is an :class:`Estimate`,
plain data that adds up: the estimate of a job is the sum of the estimates of its shards,
whatever the cut, and so is a retry subset's part of it.

What is counted, per endpoint (the constants are the stated defaults):

- chat completions, conversations, FIM: the prompt (message contents, the text parts of
  content arrays, tool calls and tool results, tool definitions) with the chat template's
  tokens. With the model's own tokenizer the template is the model's; otherwise
  :data:`REQUEST_OVERHEAD` per request, :data:`MESSAGE_OVERHEAD` per message,
  :data:`TOOLS_OVERHEAD` around tool definitions and :data:`FIM_OVERHEAD` per FIM request.
  Output: ``max_tokens`` (``completion_args.max_tokens`` for conversations) times ``n``;
  a request without it is counted at :data:`DEFAULT_OUTPUT_TOKENS` and flagged *unbounded*.
  Image parts are counted at :data:`IMAGE_TOKENS` each (their size is not known offline);
  audio and document parts, and built-in connector tools of conversations (billed per
  call), make the request's cost *unknown*.
- embeddings, moderations, classifications (and their chat forms): their inputs; no
  output tokens.
- OCR: pages, where known: the request's ``pages`` (numbers and ``"a-b"`` ranges), or one
  page for an image document; else the request's pages are *unknown*. Requests with a
  document or bbox annotation format count as annotated pages.
- audio transcription: the audio's length is not known before it runs: every request's
  cost is *unknown* (the estimate still counts the requests).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Literal, Protocol

import msgspec

Method = Literal["exact", "heuristic"]

DEFAULT_OUTPUT_TOKENS: Final = 1_024
# The most one image can take: 1024x1024 px in 16 px patches (64x64) plus 64 row breaks,
# Pixtral's encoder. An upper bound: an image's real size is not known offline.
IMAGE_TOKENS: Final = 4_160
REQUEST_OVERHEAD: Final = 1  # <s>
MESSAGE_OVERHEAD: Final = 2  # [INST] ... [/INST], [SYSTEM_PROMPT] ... [/SYSTEM_PROMPT], </s> ...
TOOLS_OVERHEAD: Final = 2  # [AVAILABLE_TOOLS] ... [/AVAILABLE_TOOLS]
FIM_OVERHEAD: Final = 3  # <s> [SUFFIX] ... [PREFIX] ...


class TokenCounter(Protocol):
    """Counts tokens for one model: exactly (its own tokenizer) or by the heuristic."""

    @property
    def method(self) -> Method: ...
    @property
    def name(self) -> str: ...
    def count_text(self, text: str) -> int: ...
    # The whole prompt of a chat request, template included; None when not possible.
    def count_chat(self, messages: list[dict[str, Any]], tools: Any) -> int | None: ...
    def count_fim(self, prompt: str, suffix: str) -> int | None: ...


@dataclass(frozen=True)
class Estimate:
    """What some requests will consume. Adds up with ``+`` and :meth:`total`.

    ``method`` is ``exact`` when every request's input tokens came from the model's own
    tokenizer and template, else ``heuristic``; an empty estimate is exact (adding it
    changes nothing)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0  # bounded by max_tokens; unbounded requests at the default
    unbounded: int = 0  # requests without max_tokens
    unknown: int = 0  # requests whose cost cannot be known before they run
    method: Method = "exact"
    pages: int = 0  # OCR pages known, without annotations
    annotated_pages: int = 0  # OCR pages known, with a document or bbox annotation format
    images: int = 0  # image parts counted at IMAGE_TOKENS each

    def __add__(self, other: Estimate) -> Estimate:
        if not isinstance(other, Estimate):
            return NotImplemented
        values: dict[str, Any] = {
            f.name: getattr(self, f.name) + getattr(other, f.name)
            for f in fields(self)
            if f.name != "method"
        }
        both_exact = self.method == "exact" and other.method == "exact"
        return Estimate(**values, method="exact" if both_exact else "heuristic")

    @staticmethod
    def total(estimates: Iterable[Estimate]) -> Estimate:
        result = Estimate()
        for estimate in estimates:
            result = result + estimate
        return result

    @property
    def total_pages(self) -> int:
        return self.pages + self.annotated_pages


ENDPOINT_KINDS: Final[Mapping[str, str]] = {
    "/v1/chat/completions": "chat",
    "/v1/conversations": "conversation",
    "/v1/fim/completions": "fim",
    "/v1/embeddings": "inputs",
    "/v1/moderations": "inputs",
    "/v1/classifications": "inputs",
    "/v1/chat/moderations": "chat_inputs",
    "/v1/chat/classifications": "chat_inputs",
    "/v1/ocr": "ocr",
    "/v1/audio/transcriptions": "transcription",
}

# Parts of a message's content that are text, and where the text sits.
_TEXT_PARTS: Final = {"text": "text"}
_IMAGE_PARTS: Final = frozenset({"image_url", "image"})
# Parts whose tokens depend on data that is not in the request (audio, files, documents).
_OPAQUE_PARTS: Final = frozenset({"input_audio", "audio_url", "document_url", "file"})
_MESSAGE_KEYS: Final = ("role", "content", "tool_calls", "tool_call_id", "name", "prefix")
_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else _json_encode(value).decode()


class _Prompt:
    """The countable pieces of a list of messages."""

    __slots__ = ("clean", "images", "messages", "opaque", "texts")

    def __init__(self, exact: bool) -> None:
        self.texts: list[str] = []
        self.messages = 0
        self.images = 0
        self.opaque = 0
        # The messages for the exact template; None: not wanted (heuristic), or not possible.
        self.clean: list[dict[str, Any]] | None = [] if exact else None

    def add(self, message: Any) -> None:
        self.messages += 1
        if not isinstance(message, dict):
            self.texts.append(_as_text(message))
            self.clean = None
            return
        content = message.get("content")
        clean_content: Any = content
        if isinstance(content, str):
            self.texts.append(content)
        elif isinstance(content, list):
            clean_content = []
            for part in content:
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
                    self.texts.append(part["text"])
                    clean_content.append(part)
                elif kind in _IMAGE_PARTS:
                    self.images += 1
                elif kind in _OPAQUE_PARTS:
                    self.opaque += 1
                elif kind == "thinking" and isinstance(part.get("thinking"), list):
                    for chunk in part["thinking"]:
                        text = chunk.get("text") if isinstance(chunk, dict) else None
                        self.texts.append(text if isinstance(text, str) else _as_text(chunk))
                    clean_content.append(part)
                else:  # a part of another kind: its JSON is the best guess of its text
                    self.texts.append(_as_text(part))
                    clean_content.append(part)
        elif content is not None:
            self.texts.append(_as_text(content))
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    self.texts.append(_as_text(function.get("name", "")))
                    self.texts.append(_as_text(function.get("arguments", "")))
                else:
                    self.texts.append(_as_text(call))
        for key in ("tool_call_id", "name"):
            value = message.get(key)
            if isinstance(value, str):
                self.texts.append(value)
        if self.clean is not None:
            clean = {k: message[k] for k in _MESSAGE_KEYS if k in message}
            if "content" in clean:
                clean["content"] = clean_content
            self.clean.append(clean)

    def count(self, counter: TokenCounter, tools: Any) -> tuple[int, bool]:
        """(input tokens, counted exactly)."""
        if (
            counter.method == "exact"
            and self.clean
            and not self.images
            and not self.opaque
            and (tools is None or isinstance(tools, list))
        ):
            exact = counter.count_chat(self.clean, tools)
            if exact is not None:
                return exact, True
        count = counter.count_text
        tokens = REQUEST_OVERHEAD + MESSAGE_OVERHEAD * self.messages
        tokens += sum(count(t) for t in self.texts) + IMAGE_TOKENS * self.images
        if tools:
            tokens += TOOLS_OVERHEAD + count(_as_text(tools))
        return tokens, False


def _output(params: Any, default: int) -> tuple[int, bool]:
    """(output tokens, unbounded) from a body's (or completion_args') max_tokens and n."""
    if not isinstance(params, dict):
        return default, True
    n = params.get("n")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n >= 1 else 1
    limit = params.get("max_tokens")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 0:
        return limit * n, False
    return default * n, True


def _input_texts(value: Any) -> tuple[list[str], int]:
    """The texts of an embeddings/moderation/classification ``input``, and the tokens given
    as token ids (lists of integers count one token each)."""
    if isinstance(value, str):
        return [value], 0
    if isinstance(value, list):
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [], len(value)
        texts: list[str] = []
        ids = 0
        for item in value:
            more, more_ids = _input_texts(item)
            texts.extend(more)
            ids += more_ids
        return texts, ids
    if value is None:
        return [], 0
    return [_as_text(value)], 0


def _conversations(value: Any) -> list[list[Any]]:
    """A chat moderation/classification ``input`` as lists of messages."""
    if isinstance(value, dict):
        messages = value.get("messages")
        return [messages] if isinstance(messages, list) else [[value]]
    if isinstance(value, list):
        if not value:
            return []
        if all(isinstance(v, dict) and "role" in v for v in value):
            return [value]
        out: list[list[Any]] = []
        for item in value:
            out.extend(_conversations(item))
        return out
    return [] if value is None else [[value]]


def page_count(pages: Any) -> int | None:
    """Distinct pages named by an OCR request's ``pages``: an int, ``"3"`` or ``"0-5"``, or
    a list of those. None when absent or unreadable (the pages are then unknown)."""
    if pages is None:
        return None
    items = pages if isinstance(pages, list) else [pages]
    spans: list[tuple[int, int]] = []
    for item in items:
        if isinstance(item, bool):
            return None
        if isinstance(item, int):
            if item < 0:
                return None
            spans.append((item, item))
        elif isinstance(item, str):
            first, dash, last = item.strip().partition("-")
            if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
                return None
            a, b = int(first), int(last) if dash else int(first)
            if b < a:
                return None
            spans.append((a, b))
        else:
            return None
    count, end = 0, -1
    for a, b in sorted(spans):  # union of ranges, without materialising them
        if b > end:
            count += b - max(a, end + 1) + 1
            end = b
    return count


class Estimator:
    """Adds requests one at a time; :meth:`result` is their :class:`Estimate`."""

    def __init__(
        self,
        endpoint: str,
        counter: TokenCounter,
        *,
        default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    ) -> None:
        if endpoint not in ENDPOINT_KINDS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        self.kind = ENDPOINT_KINDS[endpoint]
        self.counter = counter
        self.exact = counter.method == "exact"
        self.default = default_output_tokens
        self.requests = self.input = self.output = 0
        self.unbounded = self.unknown = self.pages = self.annotated = self.images = 0
        self.inexact = 0  # requests not counted by the model's own tokenizer and template

    def add_line(self, line: bytes) -> None:
        """One JSONL line (``{"custom_id": …, "body": {…}}``); blank lines are skipped."""
        if not line.strip():
            return
        try:
            request = _json_decode(line)
        except (msgspec.DecodeError, RecursionError):
            request = None
        body = request.get("body") if isinstance(request, dict) else None
        self.add_body(body)

    def add_body(self, body: Any) -> None:
        """One request's body; anything but a JSON object counts as a request whose cost
        is unknown (the inputs check refuses those lines before any estimate)."""
        self.requests += 1
        if not isinstance(body, dict):
            self.unknown += 1
            self.inexact += 1
            return
        kind = self.kind
        if kind == "chat":
            prompt = _Prompt(self.exact)
            messages = body.get("messages")
            for message in messages if isinstance(messages, list) else ():
                prompt.add(message)
            self._prompt(prompt, body.get("tools"))
            self._out(body)
        elif kind == "conversation":
            self._conversation(body)
        elif kind == "fim":
            self._fim(body)
        elif kind == "inputs":
            texts, ids = _input_texts(body["input"] if "input" in body else body.get("inputs"))
            self.input += ids + sum(self.counter.count_text(t) for t in texts)
            if self.counter.method != "exact":
                self.inexact += 1
        elif kind == "chat_inputs":
            value = body["input"] if "input" in body else body.get("inputs")
            exact, opaque = self.counter.method == "exact", False
            for conversation in _conversations(value):
                prompt = _Prompt(self.exact)
                for message in conversation:
                    prompt.add(message)
                tokens, was_exact = prompt.count(self.counter, None)
                self.input += tokens
                self.images += prompt.images
                exact = exact and was_exact
                opaque = opaque or bool(prompt.opaque)
            self.inexact += not exact
            self.unknown += opaque
        elif kind == "ocr":
            self._ocr(body)
        else:  # transcription: the audio's length decides, and it is not in the request
            self.unknown += 1

    def _prompt(self, prompt: _Prompt, tools: Any, *, connectors: bool = False) -> None:
        tokens, exact = prompt.count(self.counter, tools)
        self.input += tokens
        self.images += prompt.images
        if not exact:
            self.inexact += 1
        if prompt.opaque or connectors:
            self.unknown += 1

    def _out(self, params: Any) -> None:
        tokens, unbounded = _output(params, self.default)
        self.output += tokens
        self.unbounded += unbounded

    def _conversation(self, body: dict[str, Any]) -> None:
        prompt = _Prompt(self.exact)
        instructions = body.get("instructions")
        if isinstance(instructions, str) and instructions:
            prompt.add({"role": "system", "content": instructions})
        inputs = body.get("inputs")
        if isinstance(inputs, str):
            prompt.add({"role": "user", "content": inputs})
        elif isinstance(inputs, list):
            for entry in inputs:
                prompt.add(_entry_message(entry))
        elif inputs is not None:
            prompt.add({"role": "user", "content": _as_text(inputs)})
        tools = body.get("tools")
        functions = tools
        connectors = False
        if isinstance(tools, list):
            functions = [t for t in tools if isinstance(t, dict) and t.get("type") == "function"]
            connectors = len(functions) < len(tools)
        self._prompt(prompt, functions or None, connectors=connectors)
        self._out(body.get("completion_args", {}))

    def _fim(self, body: dict[str, Any]) -> None:
        prompt = body.get("prompt")
        suffix = body.get("suffix")
        prompt = prompt if isinstance(prompt, str) else _as_text(prompt or "")
        suffix = suffix if isinstance(suffix, str) else _as_text(suffix or "")
        exact = None
        if self.counter.method == "exact":
            exact = self.counter.count_fim(prompt, suffix)
        if exact is None:
            count = self.counter.count_text
            self.input += FIM_OVERHEAD + count(prompt) + count(suffix)
            self.inexact += 1
        else:
            self.input += exact
        self._out(body)

    def _ocr(self, body: dict[str, Any]) -> None:
        pages = page_count(body.get("pages"))
        document = body.get("document")
        if pages is None and isinstance(document, dict):
            kind = document.get("type")
            if kind == "image_url" or (kind is None and "image_url" in document):
                pages = 1
        if pages is None:
            self.unknown += 1
            return
        annotated = any(
            body.get(key) is not None
            for key in ("document_annotation_format", "bbox_annotation_format")
        )
        if annotated:
            self.annotated += pages
        else:
            self.pages += pages

    def result(self) -> Estimate:
        return Estimate(
            requests=self.requests,
            input_tokens=self.input,
            output_tokens=self.output,
            unbounded=self.unbounded,
            unknown=self.unknown,
            method="heuristic" if self.inexact else "exact",
            pages=self.pages,
            annotated_pages=self.annotated,
            images=self.images,
        )


def _entry_message(entry: Any) -> Any:
    """A conversation entry as the chat message the model sees."""
    if not isinstance(entry, dict):
        return {"role": "user", "content": _as_text(entry)}
    kind = entry.get("type")
    if kind in (None, "message.input", "message.output") and "role" in entry:
        return {"role": entry["role"], "content": entry.get("content")}
    if kind == "function.result":
        return {
            "role": "tool",
            "tool_call_id": entry.get("tool_call_id"),
            "content": _as_text(entry.get("result", "")),
        }
    if kind == "function.call":
        call = {
            "id": entry.get("tool_call_id"),
            "function": {"name": entry.get("name"), "arguments": entry.get("arguments", "")},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    return {"role": "user", "content": _as_text(entry)}


def estimate_lines(
    lines: Iterable[bytes],
    endpoint: str,
    counter: TokenCounter,
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Estimate:
    """The estimate of a stream of JSONL request lines (read once, in constant memory)."""
    estimator = Estimator(endpoint, counter, default_output_tokens=default_output_tokens)
    add = estimator.add_line
    for line in lines:
        add(line)
    return estimator.result()


def estimate_bodies(
    bodies: Iterable[Any],
    endpoint: str,
    counter: TokenCounter,
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> Estimate:
    """The estimate of request bodies already decoded (e.g. ``JobSpec.requests`` bodies)."""
    estimator = Estimator(endpoint, counter, default_output_tokens=default_output_tokens)
    for body in bodies:
        estimator.add_body(body)
    return estimator.result()
