"""Local JSONL input files: validated, hashed and cut into shards in one streaming pass.

Each non-blank line must be a JSON object (strict JSON: no NaN/Infinity) with an object
``body``. ``custom_id`` is optional, as in the API's schema: when present it must be a
string, unique within the job across all of its input files; a line without one (or with
``null``) is accepted and simply cannot be matched to its result. Blank lines are skipped
and do not count as requests. Other top-level keys are left to the API.

The same pass cuts the job's requests into shards (:mod:`reconciler.stream.shards`) when
the job does not fit the API's limits as it stands, so a file may be larger than the API
takes: it is uploaded in shards. One request larger than ``max_bytes_per_file`` is an
error naming its line.

Speed (see benchmarks/README.md for what bounds it). A block of the file is checked in
pieces of :data:`PIECE_BYTES` that stay in the CPU cache: UTF-8 is validated once per piece,
the piece is split into lines in C and every line decoded by msgspec against the expected
shape (without building bodies) through ``map`` -- no Python bytecode per line. Whatever
msgspec refuses goes, line by line, to the standard library's ``json`` (the reference),
which words the problem or accepts the line where msgspec is merely stricter (a lone
surrogate escape). The sha256 of each file is fed whole blocks; shards are hashed only once
the job is known to be split (the first shard is then hashed again from the file).

Memory does not grow with the file: blocks are read one at a time, and the custom_ids seen
so far sit in a set only up to a bound; beyond it they are kept as 64-bit hashes in sorted
runs spilled to a temporary file, checked one range of values at a time at the end.
Duplicates found that way (and any found in memory) are then named with their first
occurrence by a second pass over the files, which only runs when there is a duplicate. A
single line may not exceed :data:`MAX_LINE_BYTES`. At most :data:`MAX_PROBLEMS_PER_FILE`
problems are reported per file, followed by a count of the rest.
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import json
import os
import stat
import tempfile
from array import array
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from reconciler.config.model import Limits, LocalInput
from reconciler.errors import Location, Problem
from reconciler.stream import sources
from reconciler.stream.model import Cursor, Shard
from reconciler.stream.shards import Cutter, needs_split

MAX_PROBLEMS_PER_FILE: Final = 20
MAX_IDS_IN_MEMORY: Final = 100_000
BLOCK_BYTES: Final = 1024 * 1024
PIECE_BYTES: Final = 128 * 1024
# One request line is held in memory whole: this bounds memory for a file without newlines.
MAX_LINE_BYTES: Final = 64 * 1024 * 1024
DEFAULT_LIMITS: Final = Limits()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


class _AnyObject(msgspec.Struct, gc=False):
    """A JSON object, contents unchecked (and not built: msgspec only skips over them)."""


class _Line(msgspec.Struct, gc=False):
    body: _AnyObject
    custom_id: str | None = None


_LINE: Final = msgspec.json.Decoder(_Line)
_FAST_ERRORS: Final = (msgspec.DecodeError, msgspec.ValidationError, RecursionError)


@dataclass(frozen=True)
class InputFile:
    """One local input file of a job."""

    path: Path  # where to read it (already checked to be a regular file inside the root)
    rel: str  # relative to the config root, POSIX separators: LocalInput.path
    shown: str  # how problems name it (relative to the working folder)


@dataclass(frozen=True)
class JobInputs:
    """What one pass over a job's input files found."""

    locals: tuple[LocalInput, ...]
    shards: tuple[Shard, ...]  # empty unless the job must be split (stream.shards)
    problems: list[Problem]


class CustomIdIndex:
    """Which custom_ids of one job occur more than once, in bounded memory.

    Up to ``max_in_memory`` ids sit in a set. Beyond, every id is kept as a 64-bit hash
    (Python's, stable within the process), sorted in batches into :data:`PARTITIONS`
    partitions by value, spilled to a temporary file; :meth:`suspects` checks each
    partition on its own. The ids found (exact ones, and hashes that occur twice, which
    may be collisions) are then confirmed and located by a second pass over the inputs.
    """

    PARTITIONS: Final = 256
    BATCH: Final = 16_384

    def __init__(self, max_in_memory: int = MAX_IDS_IN_MEMORY) -> None:
        self.max_in_memory = max_in_memory
        self._seen: set[str] | None = set()
        self.duplicates: set[str] = set()  # exact, from the in-memory phase
        self._pending: array[int] = array("q")
        self._spill: IO[bytes] | None = None
        self._segments: list[list[tuple[int, int]]] = [[] for _ in range(self.PARTITIONS)]
        width = 1 << 64
        self._bounds = [
            -(1 << 63) + width * k // self.PARTITIONS for k in range(1, self.PARTITIONS)
        ]

    @property
    def spilled(self) -> bool:
        return self._seen is None

    def add(self, ids: list[str]) -> None:
        """Record ``ids`` (in input order)."""
        seen = self._seen
        if seen is None:
            self._pending.extend(map(hash, ids))
            if len(self._pending) >= self.BATCH:
                self._partition()
            return
        batch = set(ids)
        if len(batch) != len(ids) or not seen.isdisjoint(batch):
            self.duplicates.update(c for c, n in Counter(ids).items() if n > 1)
            self.duplicates.update(batch & seen)
        seen |= batch
        if len(seen) > self.max_in_memory:
            self._pending.extend(map(hash, seen))
            self._seen = None
            self._partition()

    def _partition(self) -> None:
        """Sort the pending hashes into one run on disk, noting where each partition of
        values starts in it (so that :meth:`suspects` reads one partition at a time)."""
        hashes = sorted(self._pending)
        self._pending = array("q")
        if self._spill is None:
            self._spill = tempfile.TemporaryFile(prefix="reconciler-ids-")  # noqa: SIM115
        base = self._spill.seek(0, os.SEEK_END)
        array("q", hashes).tofile(self._spill)
        cuts = [0, *(bisect.bisect_left(hashes, b) for b in self._bounds), len(hashes)]
        for k in range(self.PARTITIONS):
            if cuts[k + 1] > cuts[k]:
                self._segments[k].append((base + 8 * cuts[k], cuts[k + 1] - cuts[k]))

    def suspects(self) -> tuple[set[str], set[int]]:
        """(ids seen twice, hashes seen twice): what the second pass must look for."""
        if self._seen is not None:
            return set(self.duplicates), set()
        if self._pending:
            self._partition()
        twice: set[int] = set()
        spill = self._spill
        assert spill is not None
        for segments in self._segments:
            values = array("q")
            for offset, count in segments:
                spill.seek(offset)
                values.fromfile(spill, count)
            if len(set(values)) != len(values):
                twice.update(h for h, n in Counter(values).items() if n > 1)
        return set(self.duplicates), twice

    def close(self) -> None:
        if self._spill is not None:
            self._spill.close()
            self._spill = None
        self._seen = set()

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
    def __init__(
        self,
        files: Sequence[InputFile],
        ids: CustomIdIndex,
        cap: int,
        limits: Limits,
        *,
        hashing: bool = True,
    ) -> None:
        self.files = files
        self.ids = ids
        self.sinks = [_Sink(f.shown, cap) for f in files]
        self.max_requests = limits.max_requests_per_job
        self.cutter = Cutter(
            limits.max_requests_per_job, limits.max_bytes_per_file, hashing=hashing
        )

    def problem(self, file_no: int, line: int, column: int, fld: str, message: str) -> None:
        shown = self.files[file_no].shown
        self.sinks[file_no].add(Problem(Location(shown, line, column), fld, message))

    def where(self, file_no: int, line: int, from_file: int) -> str:
        if file_no == from_file:
            return f"line {line}"
        return f"{self.files[file_no].shown}:{line}"

    def scan(self, file_no: int) -> tuple[Any, int, int]:
        """(sha256 object, size, requests) of one file (the hash may still be running)."""
        spec = self.files[file_no]
        sha = hashlib.sha256()
        try:
            # No symlink (the loader passes real paths), and the checks below are on the
            # very file that is read: nothing can be swapped in between.
            fd = os.open(spec.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as err:
            self.problem(file_no, 0, 0, "", f"cannot read: {err.strerror}")
            return sha, 0, 0
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            self.problem(file_no, 0, 0, "", "is not a regular file")
            return sha, 0, 0
        size = requests = line_no = 0
        with os.fdopen(fd, "rb", buffering=0) as fh:
            pending = b""
            skipping = False  # inside a line too long to hold: drop it up to its end
            while block := fh.read(BLOCK_BYTES):
                base = size  # where the block starts in the file
                size += len(block)
                sha.update(block)
                start = 0
                if skipping or pending:
                    nl = block.find(b"\n")
                    if nl < 0:
                        if not skipping:
                            pending += block
                            if len(pending) > MAX_LINE_BYTES:
                                self.too_long(file_no, line_no + 1)
                                pending, skipping = b"", True
                        continue
                    start = nl + 1
                    if skipping:
                        skipping = False
                        line_no += 1
                        requests += 1
                    else:
                        head = pending + block[:start]
                        n, line_no = self.region(
                            file_no, head, 0, len(head), line_no, base - len(pending)
                        )
                        requests += n
                        pending = b""
                cut = block.rfind(b"\n", start) + 1
                if cut > start:
                    n, line_no = self.region(file_no, block, start, cut, line_no, base + start)
                    requests += n
                else:
                    cut = start
                pending = block[cut:]
                if len(pending) > MAX_LINE_BYTES:
                    self.too_long(file_no, line_no + 1)
                    pending, skipping = b"", True
            if skipping:
                line_no += 1
                requests += 1
            elif pending:
                data = pending + b"\n"
                n, line_no = self.region(file_no, data, 0, len(data), line_no, size - len(pending))
                requests += n
        if size and requests == 0:
            self.problem(file_no, 0, 0, "", "has no requests (only blank lines)")
        elif size == 0:
            self.problem(file_no, 0, 0, "", "is empty: expected one JSON request per line")
        return sha, size, requests

    def too_long(self, file_no: int, line: int) -> None:
        limit = MAX_LINE_BYTES // (1024 * 1024)
        self.problem(file_no, line, 1, "", f"line is longer than {limit} MB")

    def region(
        self, file_no: int, data: bytes, start: int, stop: int, line_no: int, offset: int
    ) -> tuple[int, int]:
        """Check the whole lines ``data[start:stop]`` (``offset``: where ``start`` is in the
        file), in cache-sized pieces; returns (requests, last line number)."""
        requests = 0
        at = start
        while at < stop:
            if stop - at <= PIECE_BYTES:
                end = stop
            else:
                end = data.rfind(b"\n", at, at + PIECE_BYTES) + 1
                if end <= at:  # one line longer than a piece
                    end = data.index(b"\n", at) + 1
            n, line_no = self.piece(file_no, data[at:end], line_no, offset + at - start)
            requests += n
            at = end
        return requests, line_no

    def piece(self, file_no: int, chunk: bytes, line_no: int, offset: int) -> tuple[int, int]:
        """Check the whole lines of ``chunk``; returns (requests, last line number).

        The common case -- every line valid, none blank -- takes the fast path: UTF-8
        checked once, the lines split and decoded by msgspec in C. Anything else is
        checked line by line (:meth:`slow`)."""
        if not chunk.isascii():
            try:
                str(chunk, "utf-8")  # msgspec does not check strings it skips
            except UnicodeDecodeError:
                return self.slow(file_no, chunk, line_no, offset)
        raws = chunk.split(b"\n")
        raws.pop()  # the chunk ends with "\n": nothing after it
        try:
            decoded = list(map(_LINE.decode, raws))
        except _FAST_ERRORS:
            return self.slow(file_no, chunk, line_no, offset)
        n = len(raws)
        cids = [d.custom_id for d in decoded]
        missing = cids.count(None)
        if chunk.count(b'"custom_id"') != n - missing:
            # Some line names custom_id more than once (or in its body): look closer.
            return self.slow(file_no, chunk, line_no, offset)
        ids: list[str] = [c for c in cids if c is not None] if missing else cids  # type: ignore[assignment]
        self.ids.add(ids)
        cutter = self.cutter
        if not cutter.hashing and cutter.requests + n > self.max_requests:
            cutter.start_hashing()  # the job will be split: its shards need their sha256
        cutter.add_block(chunk, 0, len(chunk), n, Cursor(file_no, offset, line_no))
        return n, line_no + n

    def slow(self, file_no: int, chunk: bytes, line_no: int, offset: int) -> tuple[int, int]:
        """:meth:`piece`, line by line: the standard library words each problem."""
        requests = 0
        found: list[str] = []
        for raw in chunk.split(b"\n")[:-1]:
            at = Cursor(file_no, offset, line_no)
            offset += len(raw) + 1
            line_no += 1
            if not raw or raw.isspace():
                continue
            requests += 1
            if not self.cutter.hashing and self.cutter.requests >= self.max_requests:
                self.cutter.start_hashing()
            self.cutter.add(raw + b"\n", at)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                self.problem(
                    file_no,
                    line_no,
                    len(raw[: err.start].decode("utf-8", "replace")) + 1,
                    "",
                    f"not valid UTF-8 (byte 0x{raw[err.start : err.start + 1].hex()})",
                )
                continue
            try:
                cid = _LINE.decode(raw).custom_id
            except _FAST_ERRORS:
                cid = self.line(file_no, line_no, text)
            else:
                if raw.count(b'"custom_id"') > 1:  # msgspec keeps the last of two
                    cid = self.line(file_no, line_no, text)
            if cid is not None:
                found.append(cid)
        self.ids.add(found)
        return requests, line_no

    def line(self, file_no: int, line_no: int, text: str) -> str | None:
        """Check one line with the reference decoder; its custom_id if it has a usable one."""
        try:
            obj = _DECODER.decode(text)
        except json.JSONDecodeError as err:
            if line_no == 1 and text.startswith("\ufeff"):
                message = "starts with a byte order mark (BOM); save as UTF-8 without BOM"
                self.problem(file_no, line_no, 1, "", message)
                return None
            self.problem(file_no, line_no, err.colno, "", f"invalid JSON: {err.msg}")
            return None
        except ValueError as err:
            self.problem(file_no, line_no, 1, "", f"invalid JSON: {err}")
            return None
        except RecursionError:
            self.problem(file_no, line_no, 1, "", "invalid JSON: nested too deeply")
            return None
        if not isinstance(obj, dict):
            self.problem(
                file_no, line_no, 1, "", f"each line must be a JSON object, not {_describe(obj)}"
            )
            return None
        if text.count('"custom_id"') > 1 and _has_duplicate_key(text, "custom_id"):
            self.problem(file_no, line_no, 1, "custom_id", "appears twice on this line")
            return None
        body = obj.get("body", _MISSING)
        if body is _MISSING:
            self.problem(file_no, line_no, 1, "body", "missing required field")
        elif not isinstance(body, dict):
            self.problem(
                file_no, line_no, 1, "body", f"must be a JSON object, not {_describe(body)}"
            )
        custom_id = obj.get("custom_id")
        if custom_id is None:
            return None
        if not isinstance(custom_id, str):
            self.problem(
                file_no,
                line_no,
                1,
                "custom_id",
                f"must be a string, not {_describe(custom_id)}",
            )
            return None
        return custom_id

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


class _IdOnly(msgspec.Struct, gc=False):
    custom_id: str | None = None


_ID_ONLY: Final = msgspec.json.Decoder(_IdOnly)


def _usable_id(raw: bytes) -> str | None:
    """The custom_id the scan recorded for this line (None if it recorded none)."""
    if raw.count(b'"custom_id"') > 1:
        try:
            if _has_duplicate_key(raw.decode("utf-8"), "custom_id"):
                return None  # reported as "appears twice", never counted
        except (UnicodeDecodeError, ValueError, RecursionError):
            return None
    try:
        return _ID_ONLY.decode(raw).custom_id
    except _FAST_ERRORS:
        pass
    try:
        obj = _DECODER.decode(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    cid = obj.get("custom_id") if isinstance(obj, dict) else None
    return cid if isinstance(cid, str) else None


def _locate_duplicates(scanner: _Scanner, exact: set[str], hashes: set[int]) -> None:
    """Second pass, only when a duplicate was seen: name every later occurrence of each
    duplicated id with its first one (hash collisions find a single occurrence: nothing)."""
    first: dict[str, tuple[int, int]] = {}
    for file_no, spec in enumerate(scanner.files):
        try:
            for at, line in sources.positioned([spec.path], max_line=MAX_LINE_BYTES):
                cid = _usable_id(line.rstrip(b"\r\n"))
                if cid is None or not (cid in exact or (hashes and hash(cid) in hashes)):
                    continue
                here = (file_no, at.line + 1)
                seen = first.setdefault(cid, here)
                if seen != here:
                    scanner.duplicate(cid, file_no, at.line + 1, *seen)
        except OSError:
            continue  # already reported by the scan


def _rehash(paths: Sequence[Path], start: Cursor, end: Cursor) -> str:
    digest = hashlib.sha256()
    for _, line in sources.positioned(paths, start=start, end=end, max_line=MAX_LINE_BYTES):
        digest.update(line)
    return digest.hexdigest()


def check_job_inputs(
    files: Sequence[InputFile],
    *,
    limits: Limits = DEFAULT_LIMITS,
    max_problems: int = MAX_PROBLEMS_PER_FILE,
    max_ids_in_memory: int = MAX_IDS_IN_MEMORY,
) -> JobInputs:
    """Validate, hash and (when it does not fit ``limits``) shard the input files of ONE
    job, in one pass (custom_ids are unique across them)."""
    # A file over the byte limit makes the job split for sure: hash shards from the
    # start. Otherwise shards are hashed once the request count says so (stream.shards).
    oversized = False
    for spec in files:
        with contextlib.suppress(OSError):
            oversized = oversized or os.lstat(spec.path).st_size > limits.max_bytes_per_file
    with CustomIdIndex(max_ids_in_memory) as ids:
        scanner = _Scanner(files, ids, max_problems, limits, hashing=oversized)
        scanned = [scanner.scan(i) for i in range(len(files))]
        exact, hashes = ids.suspects()
        if exact or hashes:
            _locate_duplicates(scanner, exact, hashes)
    locals_ = tuple(
        LocalInput(spec.rel, sha.hexdigest(), size, n)
        for spec, (sha, size, n) in zip(files, scanned, strict=True)
    )
    shards: tuple[Shard, ...] = ()
    if needs_split(
        sum(i.lines for i in locals_),
        [i.size for i in locals_],
        limits.max_requests_per_job,
        limits.max_bytes_per_file,
    ):
        paths = [spec.path for spec in files]
        try:
            shards = scanner.cutter.finish(lambda a, b: _rehash(paths, a, b))
        except OSError as err:  # the file went away since it was read
            scanner.problem(0, 0, 0, "", f"cannot read again: {err.strerror or err}")
        for big in scanner.cutter.too_large:
            scanner.problem(
                big.at.source,
                big.at.line + 1,
                1,
                "",
                f"request is {big.size:,} bytes, more than limits.max_bytes_per_file"
                f" ({big.limit:,}): it fits in no shard",
            )
    problems = sorted(p for sink in scanner.sinks for p in sink.problems())
    return JobInputs(locals_, () if problems else shards, problems)


def check_inputs(
    files: Sequence[InputFile],
    *,
    limits: Limits = DEFAULT_LIMITS,
    max_problems: int = MAX_PROBLEMS_PER_FILE,
    max_ids_in_memory: int = MAX_IDS_IN_MEMORY,
) -> tuple[tuple[LocalInput, ...], list[Problem]]:
    """Validate and hash the input files of ONE job (custom_ids are unique across them)."""
    result = check_job_inputs(
        files, limits=limits, max_problems=max_problems, max_ids_in_memory=max_ids_in_memory
    )
    return result.locals, result.problems


def check_input(
    path: Path, *, rel: str | None = None, shown: str | None = None
) -> tuple[LocalInput, list[Problem]]:
    """Validate and hash one file on its own (a job with a single input)."""
    spec = InputFile(path, rel or path.name, shown or str(path))
    (local,), problems = check_inputs([spec])
    return local, problems
