"""Rows of data for ``prompts:``: JSONL or CSV files, read one row at a time.

- JSONL (``.jsonl``): each non-blank line is a JSON object; its values keep their JSON
  types. Strict JSON (no NaN/Infinity), UTF-8.
- CSV (``.csv``): RFC 4180 as Python's ``csv`` module reads it (comma-separated, ``"``
  quoting, quoted fields may span lines); the first row names the fields; every value is
  a string. UTF-8, a leading byte order mark is allowed (spreadsheets write one). A row
  with more or fewer cells than the header is an error; blank lines are skipped.

Files are read in blocks, every byte passed to an optional hash as it is read, so memory
does not grow with the file (a single row is held whole, up to :data:`MAX_ROW_BYTES`).
A row carries the 1-based line it starts on, for messages.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec

from reconciler.inputs import MAX_LINE_BYTES

if TYPE_CHECKING:
    from hashlib import _Hash

RowFormat = Literal["jsonl", "csv"]
FORMATS: Final[dict[str, RowFormat]] = {".jsonl": "jsonl", ".csv": "csv"}
MAX_ROW_BYTES: Final = MAX_LINE_BYTES
_BLOCK: Final = 1024 * 1024
_DECODE: Final = msgspec.json.Decoder(dict[str, Any])


def row_format(path: str) -> RowFormat | None:
    """The format a rows file's name says, or None."""
    return FORMATS.get(Path(path).suffix.lower())


@dataclass(frozen=True)
class Row:
    line: int  # 1-based line the row starts on
    values: dict[str, Any]


@dataclass(frozen=True)
class BadRow:
    """A line that is not a usable row; reading goes on with the next one."""

    line: int
    column: int
    message: str


class RowsUnreadable(Exception):
    """The file cannot be read at all (missing, not a regular file, header unusable)."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Hashing(io.RawIOBase):
    """A read-only byte stream over ``fh`` that feeds every byte read to ``sha``."""

    def __init__(self, fh: io.BufferedReader, sha: _Hash | None) -> None:
        self._fh = fh
        self._sha = sha
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._fh.readinto(buffer)
        if n:
            self.size += n
            if self._sha is not None:
                self._sha.update(memoryview(buffer)[:n])
        return n or 0


def _open(path: Path) -> io.BufferedReader:
    try:
        # The loader passes real paths checked to be inside the root; refuse a symlink
        # swapped in since, and anything that is not a regular file.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as err:
        raise RowsUnreadable(f"cannot read: {err.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise RowsUnreadable("is not a regular file")
    return os.fdopen(fd, "rb")


def read_rows(
    path: Path, fmt: RowFormat, sha: _Hash | None = None, counter: list[int] | None = None
) -> Iterator[Row | BadRow]:
    """Every row of ``path`` in order, and a BadRow for each unusable line. ``sha`` is
    fed the file's bytes; ``counter`` (one int) receives the bytes read so far."""
    with _open(path) as fh:
        stream = _Hashing(fh, sha)
        try:
            if fmt == "jsonl":
                yield from _jsonl(stream)
            else:
                yield from _csv(stream)
        finally:
            if counter is not None:
                counter[:] = [stream.size]


def _jsonl(stream: _Hashing) -> Iterator[Row | BadRow]:
    pending = b""
    line_no = 0
    skipping = False
    while block := stream.read(_BLOCK):
        if skipping:
            end = block.find(b"\n")
            if end < 0:
                continue
            block = block[end + 1 :]
            skipping = False
        elif pending:
            block = pending + block
        cut = block.rfind(b"\n") + 1
        pending = block[cut:]
        for raw in block[:cut].split(b"\n")[:-1]:
            line_no += 1
            yield from _jsonl_line(raw, line_no)
        if len(pending) > MAX_ROW_BYTES:
            line_no += 1
            yield BadRow(line_no, 1, f"line is longer than {MAX_ROW_BYTES // (1024 * 1024)} MB")
            pending = b""
            skipping = True
    if pending and not skipping:
        yield from _jsonl_line(pending, line_no + 1)


def _jsonl_line(raw: bytes, line_no: int) -> Iterator[Row | BadRow]:
    if not raw.strip():
        return
    try:
        yield Row(line_no, _DECODE.decode(raw))
        return
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        pass
    # The reference decoder words the problem (or accepts what msgspec is stricter on).
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        yield BadRow(line_no, err.start + 1, f"not valid UTF-8 (byte 0x{raw[err.start]:02x})")
        return
    if line_no == 1 and text.startswith("\ufeff"):
        yield BadRow(line_no, 1, "starts with a byte order mark (BOM); save as UTF-8 without BOM")
        return
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as err:
        yield BadRow(line_no, err.colno, f"invalid JSON: {err.msg}")
        return
    except (ValueError, RecursionError) as err:
        message = "nested too deeply" if isinstance(err, RecursionError) else str(err)
        yield BadRow(line_no, 1, f"invalid JSON: {message}")
        return
    if not isinstance(value, dict):
        yield BadRow(line_no, 1, "each line must be a JSON object (one row), not " + _kind(value))
        return
    yield Row(line_no, value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def _csv(stream: _Hashing) -> Iterator[Row | BadRow]:
    # csv's field limit is process-wide; a row may be as long as a JSONL line may.
    if csv.field_size_limit() < MAX_ROW_BYTES:
        csv.field_size_limit(MAX_ROW_BYTES)
    text = io.TextIOWrapper(io.BufferedReader(stream, _BLOCK), encoding="utf-8-sig", newline="")
    reader = csv.reader(text, strict=True)
    header: list[str] | None = None
    start = 1
    try:
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not cells:
                continue
            if header is None:
                header = cells
                _check_header(header, line)
                continue
            if len(cells) != len(header):
                yield BadRow(
                    line,
                    1,
                    f"row has {len(cells)} cell{'s' if len(cells) != 1 else ''}, the header"
                    f" has {len(header)}",
                )
                continue
            yield Row(line, dict(zip(header, cells, strict=True)))
    except UnicodeDecodeError as err:
        raise RowsUnreadable(f"not valid UTF-8 (byte 0x{err.object[err.start]:02x})") from None
    except csv.Error as err:
        raise RowsUnreadable(f"invalid CSV: {err}", reader.line_num) from None
    if header is None:
        raise RowsUnreadable("is empty: the first row must name the fields (a CSV header)")


def _check_header(header: list[str], line: int) -> None:
    seen: set[str] = set()
    for i, name in enumerate(header, 1):
        if not name.strip():
            raise RowsUnreadable(f"the header's column {i} has no name", line)
        if name in seen:
            raise RowsUnreadable(f"the header names {name!r} twice", line)
        seen.add(name)
