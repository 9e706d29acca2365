"""Local JSONL input files: validated and hashed in one streaming pass, in constant memory.

Each non-blank line must be a JSON object (strict JSON: no NaN/Infinity) with an object
``body``. ``custom_id`` is optional, as in the API's schema: when present it must be a
string, unique within the job across all of its input files; a line without one (or with
``null``) is accepted and simply cannot be matched to its result. Blank lines are skipped
and do not count as requests. Other top-level keys are left to the API.

Memory does not grow with the file: the file is read in fixed-size blocks, hashed as it is
read, and the custom_ids seen so far sit in a dict only up to a bound; beyond it they spill
to a table in a temporary SQLite database, where duplicates are found with one indexed query
at the end. A single line may not exceed :data:`MAX_LINE_BYTES`. At most
:data:`MAX_PROBLEMS_PER_FILE` problems are reported per file, followed by a count of the rest.

Valid lines take a fast path: msgspec checks the line's shape in C without building the
body. Any line it refuses is decoded again by the standard library's ``json``, the
reference, which words the problem (or accepts the line where msgspec is merely stricter,
e.g. a lone surrogate escape). msgspec accepts no line that ``json`` refuses: the tests
check this on generated near-JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec

from reconciler import api
from reconciler.config.model import LocalInput
from reconciler.errors import Location, Problem

MAX_PROBLEMS_PER_FILE: Final = 20
MAX_IDS_IN_MEMORY: Final = 100_000
BLOCK_BYTES: Final = 1024 * 1024
# One request line is held in memory whole: this bounds memory for a file without newlines.
MAX_LINE_BYTES: Final = 64 * 1024 * 1024


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


class _AnyObject(msgspec.Struct):
    """A JSON object, contents unchecked (and not built: msgspec only skips over them)."""


class _Line(msgspec.Struct):
    body: _AnyObject
    custom_id: str | None = None


_LINE: Final = msgspec.json.Decoder(_Line)


@dataclass(frozen=True)
class InputFile:
    """One local input file of a job."""

    path: Path  # where to read it (already checked to be a regular file inside the root)
    rel: str  # relative to the config root, POSIX separators: LocalInput.path
    shown: str  # how problems name it (relative to the working folder)


class CustomIdIndex:
    """The custom_ids of one job: a dict up to ``max_in_memory`` entries, then SQLite.

    ``add`` answers a duplicate found in memory at once (with where the first one was);
    duplicates involving spilled ids are only known at :meth:`spilled_duplicates`.
    """

    def __init__(self, max_in_memory: int = MAX_IDS_IN_MEMORY) -> None:
        self.max_in_memory = max_in_memory
        # custom_id -> file_no << 32 | line: an int is smaller than a tuple.
        self._memory: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def spilled(self) -> bool:
        return self._db is not None

    def add_many(self, rows: list[tuple[str, int, int]]) -> list[tuple[str, int, int, int, int]]:
        """Record (custom_id, file_no, line) rows, in order; returns the duplicates found in
        memory as (custom_id, file_no, line, first_file_no, first_line)."""
        if self._db is not None:
            self._db.executemany("INSERT INTO ids VALUES (?, ?, ?)", rows)
            return []
        memory = self._memory
        dups = []
        for cid, file_no, line in rows:
            packed = file_no << 32 | line
            first = memory.setdefault(cid, packed)
            if first != packed:
                dups.append((cid, file_no, line, first >> 32, first & 0xFFFFFFFF))
        if len(memory) > self.max_in_memory:
            self._spill()
        return dups

    def _spill(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="reconciler-ids-")
        db = sqlite3.connect(Path(self._tmp.name) / "ids.sqlite3")
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.execute("CREATE TABLE ids (cid TEXT NOT NULL, f INTEGER NOT NULL, line INTEGER)")
        self._db = db
        rows = ((cid, v >> 32, v & 0xFFFFFFFF) for cid, v in self._memory.items())
        db.executemany("INSERT INTO ids VALUES (?, ?, ?)", rows)
        self._memory = {}

    def spilled_duplicates(self) -> Iterator[tuple[str, int, int, int, int]]:
        """(custom_id, file_no, line, first_file_no, first_line) of every later occurrence
        of an id among the spilled ones, ordered by file and line."""
        if self._db is None:
            return
        db = self._db
        db.execute("CREATE INDEX ids_cid ON ids (cid, f, line)")
        rows = db.execute(
            """
            WITH dup AS (SELECT cid FROM ids GROUP BY cid HAVING COUNT(*) > 1),
            ranked AS (
                SELECT ids.cid, f, line,
                       ROW_NUMBER() OVER w AS rn,
                       FIRST_VALUE(f) OVER w AS ff,
                       FIRST_VALUE(line) OVER w AS fl
                FROM ids JOIN dup ON dup.cid = ids.cid
                WINDOW w AS (PARTITION BY ids.cid ORDER BY f, line)
            )
            SELECT cid, f, line, ff, fl FROM ranked WHERE rn > 1 ORDER BY f, line
            """
        )
        yield from rows

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._memory = {}

    def __enter__(self) -> CustomIdIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class _Sink:
    """The first ``cap`` problems of one file by position, and a count of the others."""

    shown: str
    cap: int
    kept: list[Problem] = field(default_factory=list)
    hidden: int = 0
    first_hidden: Location | None = None

    def add(self, problem: Problem) -> None:
        self.kept.append(problem)
        if len(self.kept) > self.cap:
            self.kept.sort()
            dropped = self.kept.pop()
            self.hidden += 1
            if self.first_hidden is None or dropped.location < self.first_hidden:
                self.first_hidden = dropped.location

    def problems(self) -> list[Problem]:
        if not self.hidden:
            return list(self.kept)
        more = Problem(
            self.first_hidden or Location(self.shown),
            "",
            f"{self.hidden} more problem{'s' if self.hidden != 1 else ''} from here on (not shown)",
        )
        return [*self.kept, more]


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Scanner:
    def __init__(self, files: Sequence[InputFile], ids: CustomIdIndex, cap: int) -> None:
        self.files = files
        self.ids = ids
        self.sinks = [_Sink(f.shown, cap) for f in files]

    def problem(self, file_no: int, line: int, column: int, fld: str, message: str) -> None:
        shown = self.files[file_no].shown
        self.sinks[file_no].add(Problem(Location(shown, line, column), fld, message))

    def where(self, file_no: int, line: int, from_file: int) -> str:
        if file_no == from_file:
            return f"line {line}"
        return f"{self.files[file_no].shown}:{line}"

    def scan(self, file_no: int) -> LocalInput:
        spec = self.files[file_no]
        sha = hashlib.sha256()
        size = 0
        requests = 0
        line_no = 0
        try:
            # No symlink (the loader passes real paths), and the checks below are on the
            # very file that is read: nothing can be swapped in between.
            fd = os.open(spec.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as err:
            self.problem(file_no, 0, 0, "", f"cannot read: {err.strerror}")
            return LocalInput(spec.rel, sha.hexdigest(), 0, 0)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            self.problem(file_no, 0, 0, "", "is not a regular file")
            return LocalInput(spec.rel, sha.hexdigest(), 0, 0)
        with os.fdopen(fd, "rb") as fh:
            if info.st_size > api.MAX_FILE_BYTES:
                self.problem(file_no, 0, 0, "", _too_big(info.st_size))
                return LocalInput(spec.rel, sha.hexdigest(), info.st_size, 0)
            pending = b""
            skipping = False  # inside a line too long to hold: drop it up to its end
            while block := fh.read(BLOCK_BYTES):
                size += len(block)
                if size > api.MAX_FILE_BYTES:  # grew while we read it
                    self.problem(file_no, 0, 0, "", _too_big(size))
                    break
                sha.update(block)
                if skipping:
                    end = block.find(b"\n")
                    if end < 0:
                        continue
                    block = block[end + 1 :]
                    skipping = False
                    line_no += 1
                    requests += 1
                elif pending:
                    block = pending + block
                cut = block.rfind(b"\n") + 1
                pending = block[cut:]
                if cut:
                    n, line_no = self.lines(file_no, block[:cut], line_no)
                    requests += n
                if len(pending) > MAX_LINE_BYTES:
                    limit = MAX_LINE_BYTES // (1024 * 1024)
                    self.problem(file_no, line_no + 1, 1, "", f"line is longer than {limit} MB")
                    pending = b""
                    skipping = True
            if skipping:
                line_no += 1
                requests += 1
            elif pending:
                n, line_no = self.lines(file_no, pending + b"\n", line_no)
                requests += n
        if size and requests == 0:
            self.problem(file_no, 0, 0, "", "has no requests (only blank lines)")
        elif size == 0:
            self.problem(file_no, 0, 0, "", "is empty: expected one JSON request per line")
        return LocalInput(spec.rel, sha.hexdigest(), size, requests)

    def lines(self, file_no: int, block: bytes, line_no: int) -> tuple[int, int]:
        """Check the complete lines of ``block``; returns (requests, last line number).

        The common case -- a valid line -- takes a fast path: msgspec decodes the line
        against the expected shape in C, without building the body. Whatever it refuses
        goes to :meth:`line` (the standard library's decoder, the reference), which finds
        and words the problem, or accepts the line where msgspec is merely stricter."""
        if not block.isascii():
            try:
                block.decode("utf-8")  # msgspec does not check strings it skips
            except UnicodeDecodeError:
                return self.undecodable(file_no, block, line_no)
        raws = block.split(b"\n")
        raws.pop()  # the block ends with "\n": nothing after it
        decode, slow = _LINE.decode, self.line
        found: list[tuple[str, int, int]] = []
        requests = 0
        for raw in raws:
            line_no += 1
            if not raw:
                continue
            try:
                cid = decode(raw).custom_id
            except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
                if not raw.isspace():
                    requests += 1
                    slow(file_no, line_no, raw.decode("utf-8"))
                continue
            requests += 1
            if raw.count(b'"custom_id"') > 1:  # msgspec keeps the last of two: look closer
                slow(file_no, line_no, raw.decode("utf-8"))
            elif cid is not None:
                found.append((cid, file_no, line_no))
        self.add_ids(found)
        return requests, line_no

    def add_ids(self, rows: list[tuple[str, int, int]]) -> None:
        for dup in self.ids.add_many(rows):
            self.duplicate(*dup)

    def undecodable(self, file_no: int, block: bytes, line_no: int) -> tuple[int, int]:
        """:meth:`lines` for a block that is not all UTF-8: line by line."""
        requests = 0
        for raw in block.split(b"\n")[:-1]:
            line_no += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                requests += 1
                self.problem(
                    file_no,
                    line_no,
                    len(raw[: err.start].decode("utf-8", "replace")) + 1,
                    "",
                    f"not valid UTF-8 (byte 0x{raw[err.start : err.start + 1].hex()})",
                )
                continue
            if text and not text.isspace():
                requests += 1
                self.line(file_no, line_no, text)
        return requests, line_no

    def line(self, file_no: int, line_no: int, text: str) -> None:
        try:
            obj = _DECODER.decode(text)
        except json.JSONDecodeError as err:
            if line_no == 1 and text.startswith("\ufeff"):
                message = "starts with a byte order mark (BOM); save as UTF-8 without BOM"
                self.problem(file_no, line_no, 1, "", message)
                return
            self.problem(file_no, line_no, err.colno, "", f"invalid JSON: {err.msg}")
            return
        except ValueError as err:
            self.problem(file_no, line_no, 1, "", f"invalid JSON: {err}")
            return
        except RecursionError:
            self.problem(file_no, line_no, 1, "", "invalid JSON: nested too deeply")
            return
        if not isinstance(obj, dict):
            self.problem(
                file_no, line_no, 1, "", f"each line must be a JSON object, not {_describe(obj)}"
            )
            return
        if text.count('"custom_id"') > 1 and _has_duplicate_key(text, "custom_id"):
            self.problem(file_no, line_no, 1, "custom_id", "appears twice on this line")
            return
        body = obj.get("body", _MISSING)
        if body is _MISSING:
            self.problem(file_no, line_no, 1, "body", "missing required field")
        elif not isinstance(body, dict):
            self.problem(
                file_no, line_no, 1, "body", f"must be a JSON object, not {_describe(body)}"
            )
        custom_id = obj.get("custom_id")
        if custom_id is None:
            return
        if not isinstance(custom_id, str):
            self.problem(
                file_no,
                line_no,
                1,
                "custom_id",
                f"must be a string, not {_describe(custom_id)}",
            )
            return
        self.add_ids([(custom_id, file_no, line_no)])

    def duplicate(self, cid: str, file_no: int, line: int, first_file: int, first: int) -> None:
        shown = cid if len(cid) <= 60 else cid[:57] + "..."
        self.problem(
            file_no,
            line,
            1,
            "custom_id",
            f"duplicate {shown!r} (first at {self.where(first_file, first, file_no)});"
            " custom_ids must be unique within a job",
        )


_MISSING: Final = object()


def _has_duplicate_key(text: str, key: str) -> bool:
    """Whether ``key`` appears twice at the top level of the JSON object ``text`` (the
    decoder silently keeps the last one). Nested objects are body content: not checked."""
    top = json.loads(text, object_pairs_hook=lambda pairs: pairs)
    return isinstance(top, list) and sum(1 for k, _ in top if k == key) > 1


def _too_big(size: int) -> str:
    limit = api.MAX_FILE_BYTES // (1024 * 1024)
    return f"is {size / (1024 * 1024):.1f} MB; the API accepts files of at most {limit} MB"


def check_inputs(
    files: Sequence[InputFile],
    *,
    max_problems: int = MAX_PROBLEMS_PER_FILE,
    max_ids_in_memory: int = MAX_IDS_IN_MEMORY,
) -> tuple[tuple[LocalInput, ...], list[Problem]]:
    """Validate and hash the input files of ONE job (custom_ids are unique across them)."""
    with CustomIdIndex(max_ids_in_memory) as ids:
        scanner = _Scanner(files, ids, max_problems)
        locals_ = tuple(scanner.scan(i) for i in range(len(files)))
        for cid, f, line, first_f, first_line in ids.spilled_duplicates():
            scanner.duplicate(cid, f, line, first_f, first_line)
    problems = sorted(p for sink in scanner.sinks for p in sink.problems())
    return locals_, problems


def check_input(
    path: Path, *, rel: str | None = None, shown: str | None = None
) -> tuple[LocalInput, list[Problem]]:
    """Validate and hash one file on its own (a job with a single input)."""
    spec = InputFile(path, rel or path.name, shown or str(path))
    (local,), problems = check_inputs([spec])
    return local, problems
