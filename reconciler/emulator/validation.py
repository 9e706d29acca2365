"""Validation of create bodies and query parameters, answered FastAPI-style.

A 422 carries ``{"detail": [{"type", "loc", "msg", "input"}, ...]}`` with every problem
found, the way the real API (FastAPI + pydantic) reports them: ``loc`` starts with where the
value came from (``body``, ``query``, ``path``). Pure functions: no I/O here.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from reconciler.api import (
    ENDPOINTS,
    MAX_INLINE_REQUESTS,
    METADATA_KEY_MAX,
    METADATA_KEY_MIN,
    METADATA_VALUE_MAX,
    METADATA_VALUE_MIN,
    TIMEOUT_HOURS_DEFAULT,
    TIMEOUT_HOURS_MAX,
    TIMEOUT_HOURS_MIN,
)
from reconciler.emulator import synth

Detail = dict[str, Any]
Loc = tuple[str | int, ...]


def detail(kind: str, loc: Loc, msg: str, value: object, **ctx: object) -> Detail:
    item: Detail = {"type": kind, "loc": list(loc), "msg": msg, "input": value}
    if ctx:
        item["ctx"] = ctx
    return item


def missing(loc: Loc, container: object) -> Detail:
    return detail("missing", loc, "Field required", container)


def string_type(loc: Loc, value: object) -> Detail:
    return detail("string_type", loc, "Input should be a valid string", value)


def value_error(loc: Loc, message: str, value: object) -> Detail:
    return detail("value_error", loc, f"Value error, {message}", value, error=message)


def _string_length(loc: Loc, value: str, low: int, high: int) -> Detail | None:
    if len(value) < low:
        plural = "s" if low != 1 else ""
        return detail(
            "string_too_short",
            loc,
            f"String should have at least {low} character{plural}",
            value,
            min_length=low,
        )
    if len(value) > high:
        return detail(
            "string_too_long",
            loc,
            f"String should have at most {high} characters",
            value,
            max_length=high,
        )
    return None


def uuid_problem(loc: Loc, value: object) -> Detail | None:
    if not isinstance(value, str):
        return detail(
            "uuid_type", loc, "UUID input should be a string, bytes or UUID object", value
        )
    try:
        uuid.UUID(value)
    except ValueError:
        return detail(
            "uuid_parsing",
            loc,
            "Input should be a valid UUID, invalid character: expected an optional prefix of "
            "`urn:uuid:` followed by [0-9a-fA-F-]",
            value,
        )
    return None


@dataclass(frozen=True)
class CreateRequest:
    """A structurally valid create body (input files are checked against storage later)."""

    endpoint: str
    model: str | None
    agent_id: str | None
    metadata: dict[str, str] | None
    timeout_hours: int
    input_files: list[str] | None
    requests: list[dict[str, Any]] | None


def _check_requests(value: object) -> list[Detail]:
    loc: Loc = ("body", "requests")
    if not isinstance(value, list):
        return [detail("list_type", loc, "Input should be a valid list", value)]
    problems: list[Detail] = []
    if len(value) > MAX_INLINE_REQUESTS:
        problems.append(
            detail(
                "too_long",
                loc,
                f"List should have at most {MAX_INLINE_REQUESTS} items after validation, "
                f"not {len(value)}",
                f"<list of {len(value)} requests>",
                field_type="List",
                max_length=MAX_INLINE_REQUESTS,
                actual_length=len(value),
            )
        )
        return problems
    if not value:
        problems.append(
            detail(
                "too_short",
                loc,
                "List should have at least 1 item after validation, not 0",
                value,
                field_type="List",
                min_length=1,
                actual_length=0,
            )
        )
    for index, item in enumerate(value):
        problems.extend(request_problems(item, (*loc, index)))
    return problems


def request_problems(item: object, loc: Loc) -> list[Detail]:
    """Problems of one batch request ``{"custom_id"?: str, "body": {...}}``."""
    if not isinstance(item, dict):
        return [
            detail(
                "model_attributes_type",
                loc,
                "Input should be a valid dictionary or object to extract fields from",
                item,
            )
        ]
    problems: list[Detail] = []
    if "body" not in item:
        problems.append(missing((*loc, "body"), item))
    elif not isinstance(item["body"], dict):
        problems.append(
            detail("dict_type", (*loc, "body"), "Input should be a valid dictionary", item["body"])
        )
    custom_id = item.get("custom_id")
    if custom_id is not None and not isinstance(custom_id, str):
        problems.append(string_type((*loc, "custom_id"), custom_id))
    return problems


def _check_input_files(value: object) -> list[Detail]:
    loc: Loc = ("body", "input_files")
    if not isinstance(value, list):
        return [detail("list_type", loc, "Input should be a valid list", value)]
    if not value:
        return [
            detail(
                "too_short",
                loc,
                "List should have at least 1 item after validation, not 0",
                value,
                field_type="List",
                min_length=1,
                actual_length=0,
            )
        ]
    problems = [uuid_problem((*loc, index), item) for index, item in enumerate(value)]
    return [p for p in problems if p is not None]


def _check_metadata(value: object) -> list[Detail]:
    loc: Loc = ("body", "metadata")
    if value is None:
        return []
    if not isinstance(value, dict):
        return [detail("dict_type", loc, "Input should be a valid dictionary", value)]
    problems: list[Detail] = []
    for key, item in value.items():
        too = _string_length((*loc, key, "[key]"), key, METADATA_KEY_MIN, METADATA_KEY_MAX)
        if too:
            problems.append(too)
        if not isinstance(item, str):
            problems.append(string_type((*loc, key), item))
            continue
        too = _string_length((*loc, key), item, METADATA_VALUE_MIN, METADATA_VALUE_MAX)
        if too:
            problems.append(too)
    return problems


def _check_timeout(value: object) -> list[Detail]:
    loc: Loc = ("body", "timeout_hours")
    if isinstance(value, bool) or not isinstance(value, int):
        return [detail("int_type", loc, "Input should be a valid integer", value)]
    if value < TIMEOUT_HOURS_MIN:
        return [
            detail(
                "greater_than_equal",
                loc,
                f"Input should be greater than or equal to {TIMEOUT_HOURS_MIN}",
                value,
                ge=TIMEOUT_HOURS_MIN,
            )
        ]
    if value > TIMEOUT_HOURS_MAX:
        return [
            detail(
                "less_than_equal",
                loc,
                f"Input should be less than or equal to {TIMEOUT_HOURS_MAX}",
                value,
                le=TIMEOUT_HOURS_MAX,
            )
        ]
    return []


def _optional_string(body: dict[str, Any], name: str) -> list[Detail]:
    value = body.get(name)
    if value is None:
        return []
    if not isinstance(value, str):
        return [string_type(("body", name), value)]
    too = _string_length(("body", name), value, 1, 10_000)  # no documented maximum
    return [too] if too else []


def check_create(body: object) -> tuple[CreateRequest | None, list[Detail]]:
    """Validate a create body; returns the request, or None and every problem found."""
    if not isinstance(body, dict):
        return None, [
            detail(
                "model_attributes_type",
                ("body",),
                "Input should be a valid dictionary or object to extract fields from",
                body,
            )
        ]
    problems: list[Detail] = []
    endpoint = body.get("endpoint")
    if "endpoint" not in body:
        problems.append(missing(("body", "endpoint"), body))
    elif endpoint not in ENDPOINTS:
        expected = ", ".join(f"'{e}'" for e in ENDPOINTS[:-1]) + f" or '{ENDPOINTS[-1]}'"
        problems.append(
            detail(
                "enum",
                ("body", "endpoint"),
                f"Input should be {expected}",
                endpoint,
                expected=expected,
            )
        )
    input_files = body.get("input_files")
    requests = body.get("requests")
    if input_files is not None:
        problems.extend(_check_input_files(input_files))
    if requests is not None:
        problems.extend(_check_requests(requests))
    if (input_files is None) == (requests is None):
        problems.append(
            value_error(("body",), "exactly one of input_files or requests must be provided", body)
        )
    problems.extend(_optional_string(body, "model"))
    problems.extend(_optional_string(body, "agent_id"))
    if (body.get("model") is None) == (body.get("agent_id") is None):
        problems.append(
            value_error(("body",), "exactly one of model or agent_id must be provided", body)
        )
    problems.extend(_check_metadata(body.get("metadata")))
    timeout = body.get("timeout_hours", TIMEOUT_HOURS_DEFAULT)
    if timeout is None:
        timeout = TIMEOUT_HOURS_DEFAULT
    problems.extend(_check_timeout(timeout))
    if problems:
        return None, problems
    return (
        CreateRequest(
            endpoint=str(endpoint),
            model=body.get("model"),
            agent_id=body.get("agent_id"),
            metadata=body.get("metadata"),
            timeout_hours=int(timeout),
            input_files=list(input_files) if input_files is not None else None,
            requests=list(requests) if requests is not None else None,
        ),
        [],
    )


# --- JSON from the wire: strict -------------------------------------------------------

MAX_JSON_DEPTH = 100  # nesting levels of arrays and objects
MAX_LINE_BYTES = 64 * 1024 * 1024  # one request of an input file
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _check_tree(value: Any) -> None:
    """Nesting depth and strings (no lone surrogates: they cannot be stored or sent)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a string holds a lone surrogate (\\ud800-\\udfff)") from None
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def loads(raw: bytes) -> Any:
    """Parse JSON the strict way: no NaN/Infinity, no out-of-range numbers (1e400), no
    integers beyond Python's digit limit, no nesting beyond ``MAX_JSON_DEPTH``, no lone
    surrogates. Raises ValueError (UnicodeDecodeError and JSONDecodeError included)."""
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    # Only a text with that many brackets can be that deep, only one with a \uD8.. escape
    # can hold a surrogate: the usual request skips the walk.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH or _SURROGATE_ESCAPE.search(raw):
        _check_tree(value)
    return value


def parse_json_body(raw: bytes) -> Any:
    """A request body as JSON, or the API's 422 ``json_invalid``."""
    try:
        return loads(raw)
    except ValueError as err:
        from reconciler.emulator import errors  # noqa: PLC0415 (errors imports this module)

        message = str(err)[:300]
        raise errors.validation_failed(
            [detail("json_invalid", ("body", 0), "JSON decode error", {}, error=message)]
        ) from None


# --- input files: streaming --------------------------------------------------------------


@dataclass(frozen=True)
class ParsedLine:
    """One request of a job, in order: what the results are computed from."""

    index: int
    custom_id: str | None
    body: dict[str, Any]
    problem: str | None  # why the endpoint rejects it (-> error file, 400), or None


class InvalidJsonl(ValueError):
    """An input file that is not valid batch JSONL; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def bounded_lines(stream: IO[bytes]) -> Iterator[bytes]:
    """The lines of a binary stream, none read beyond ``MAX_LINE_BYTES`` + 1 bytes (a longer
    one is cut there, and parse_lines refuses it): a file of one huge line stays small."""
    while True:
        line = stream.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        yield line
        if len(line) > MAX_LINE_BYTES:
            return


def parse_lines(lines: Iterable[bytes], endpoint: str, *, start: int = 0) -> Iterator[ParsedLine]:
    """Parse batch JSONL one line at a time (constant memory); blank lines are skipped.

    Raises InvalidJsonl on the first line that is not a JSON object with an object ``body``
    (and an optional string ``custom_id``).
    """
    index = start
    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE_BYTES:
            raise InvalidJsonl(number, f"longer than {MAX_LINE_BYTES} bytes")
        if not raw.strip():
            continue
        try:
            item = loads(raw)
        except UnicodeDecodeError:
            raise InvalidJsonl(number, "not valid UTF-8") from None
        except json.JSONDecodeError as err:
            raise InvalidJsonl(number, f"not valid JSON ({err.msg})") from None
        except ValueError as err:
            raise InvalidJsonl(number, f"not valid JSON ({str(err)[:200]})") from None
        if not isinstance(item, dict):
            raise InvalidJsonl(number, "a request must be a JSON object")
        if not isinstance(item.get("body"), dict):
            raise InvalidJsonl(number, "'body' must be a JSON object")
        custom_id = item.get("custom_id")
        if custom_id is not None and not isinstance(custom_id, str):
            raise InvalidJsonl(number, "'custom_id' must be a string")
        body = item["body"]
        yield ParsedLine(index, custom_id, body, synth.problem(endpoint, body))
        index += 1


# --- query parameters --------------------------------------------------------------------

_TRUE = {"true", "1", "yes", "on", "t", "y"}
_FALSE = {"false", "0", "no", "off", "f", "n"}


def query_bool(name: str, raw: str) -> tuple[bool | None, Detail | None]:
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True, None
    if lowered in _FALSE:
        return False, None
    return None, detail(
        "bool_parsing",
        ("query", name),
        "Input should be a valid boolean, unable to interpret input",
        raw,
    )


def query_int(name: str, raw: str, low: int, high: int | None) -> tuple[int | None, Detail | None]:
    try:
        text = raw.strip()
        if not text.isascii() or len(text) > 30:  # no "١٢", no 5000-digit numbers
            raise ValueError(text)
        value = int(text)
    except ValueError:
        return None, detail(
            "int_parsing",
            ("query", name),
            "Input should be a valid integer, unable to parse string as an integer",
            raw,
        )
    if value < low:
        return None, detail(
            "greater_than_equal",
            ("query", name),
            f"Input should be greater than or equal to {low}",
            raw,
            ge=low,
        )
    if high is not None and value > high:
        return None, detail(
            "less_than_equal",
            ("query", name),
            f"Input should be less than or equal to {high}",
            raw,
            le=high,
        )
    return value, None


def query_datetime(name: str, raw: str) -> tuple[float | None, Detail | None]:
    """ISO 8601 (``Z`` or an offset; naive means UTC) or Unix seconds, like pydantic."""
    text = raw.strip()
    try:
        seconds = float(text)
        if math.isfinite(seconds) and abs(seconds) < 1e12:
            return seconds, None
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp(), None
    except (ValueError, OverflowError):
        return None, detail(
            "datetime_from_date_parsing",
            ("query", name),
            "Input should be a valid datetime or date, invalid character in year",
            raw,
        )


def query_enum(name: str, raw: str, allowed: Iterable[str]) -> Detail | None:
    choices = list(allowed)
    if raw in choices:
        return None
    expected = ", ".join(f"'{c}'" for c in choices[:-1]) + f" or '{choices[-1]}'"
    return detail("enum", ("query", name), f"Input should be {expected}", raw, expected=expected)
