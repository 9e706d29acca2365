"""What finished requests actually used: the ``usage`` their results report, summed over a
stream of result lines, and what it cost.

A result line is ``{"id": …, "custom_id": …, "response": {"status_code": 200, "body":
{…}}, "error": null}`` (output and error files share the envelope). Counted per body:

- ``usage.prompt_tokens`` and ``usage.completion_tokens`` (chat, FIM, conversations,
  embeddings, moderation, classification; ``total_tokens`` is their sum and not needed);
- ``usage.prompt_audio_seconds`` (transcription);
- ``usage_info.pages_processed`` (OCR), as annotated pages when the response carries a
  ``document_annotation``.

Lines without any of these (failed requests, unreadable lines) count in ``without_usage``:
the API does not bill a request it refused. Values that are not non-negative numbers are
ignored, as results are untrusted input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any, Final

import msgspec

from reconciler.cost.money import CONTEXT, ZERO, to_decimal
from reconciler.cost.prices import PriceTable
from reconciler.cost.pricing import Cost, Quantities, price

_decode = msgspec.json.Decoder().decode
_MAX: Final = 10**12  # a count beyond this in one result is not a real usage: ignored


@dataclass(frozen=True)
class Usage:
    """Summed usage of some results. Adds up with ``+``."""

    results: int = 0  # result lines read
    with_usage: int = 0  # of them, with a usage the API reported
    prompt_tokens: int = 0
    completion_tokens: int = 0
    pages: int = 0
    annotated_pages: int = 0
    audio_seconds: Decimal = ZERO

    @property
    def without_usage(self) -> int:
        return self.results - self.with_usage

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        values: dict[str, Any] = {
            f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)
        }
        return Usage(**values)

    def quantities(self, endpoint: str | None = None) -> Quantities:
        """What to price. Transcription is billed by the minute of audio only: the tokens
        its results report are not priced on that endpoint."""
        audio_only = endpoint == "/v1/audio/transcriptions"
        return Quantities(
            requests=self.with_usage,
            input_tokens=0 if audio_only else self.prompt_tokens,
            output_tokens=0 if audio_only else self.completion_tokens,
            pages=self.pages,
            annotated_pages=self.annotated_pages,
            audio_seconds=self.audio_seconds,
        )


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX:
        return None
    return value


def _seconds(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = to_decimal(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= _MAX else None


class UsageCounter:
    """Adds result lines one at a time; :meth:`result` is their :class:`Usage`."""

    def __init__(self) -> None:
        self.results = self.with_usage = 0
        self.prompt = self.completion = self.pages = self.annotated = 0
        self.seconds = ZERO

    def add_line(self, line: bytes) -> None:
        if not line.strip():
            return
        self.results += 1
        try:
            result = _decode(line)
        except (msgspec.DecodeError, RecursionError):
            return
        response = result.get("response") if isinstance(result, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if isinstance(body, dict):
            self.add_body(body)

    def add_body(self, body: dict[str, Any]) -> None:
        found = False
        usage = body.get("usage")
        if isinstance(usage, dict):
            prompt = _count(usage.get("prompt_tokens"))
            completion = _count(usage.get("completion_tokens"))
            seconds = _seconds(usage.get("prompt_audio_seconds"))
            if prompt is not None:
                self.prompt += prompt
                found = True
            if completion is not None:
                self.completion += completion
                found = True
            if seconds is not None:
                self.seconds = CONTEXT.add(self.seconds, seconds)
                found = True
        info = body.get("usage_info")
        if isinstance(info, dict):
            pages = _count(info.get("pages_processed"))
            if pages is not None:
                if body.get("document_annotation") is not None:
                    self.annotated += pages
                else:
                    self.pages += pages
                found = True
        self.with_usage += found

    def result(self) -> Usage:
        return Usage(
            results=self.results,
            with_usage=self.with_usage,
            prompt_tokens=self.prompt,
            completion_tokens=self.completion,
            pages=self.pages,
            annotated_pages=self.annotated,
            audio_seconds=self.seconds,
        )


def usage_of_lines(lines: Iterable[bytes]) -> Usage:
    """The summed usage of a stream of result lines (read once, in constant memory)."""
    counter = UsageCounter()
    for line in lines:
        counter.add_line(line)
    return counter.result()


def actual_cost(usage: Usage, model: str | None, table: PriceTable, endpoint: str) -> Cost:
    """What ``usage`` cost for ``model`` at ``table``'s batch prices."""
    return price(usage.quantities(endpoint), model, table)
