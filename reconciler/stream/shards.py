"""Cutting a job's requests into shards: greedy, in input order, within both limits.

A shard holds at most ``max_requests`` requests and its file at most ``max_bytes`` bytes.
The cut is greedy: each shard takes as many of the following requests as fit, so a shard's
end depends only on the requests before it and its own. Hence, for any input:

- appending requests never changes an earlier shard: only the last may grow, then new
  shards follow;
- the shards, in order, are the input, without gap or overlap;
- editing one request (without changing its byte length across a boundary) changes only
  the shard holding it -- and however it is edited, no shard before it;
- every shard is within both limits; one request larger than ``max_bytes`` cannot be
  placed and is reported (:class:`RequestTooLarge`).

A job is **split** only when it does not fit as it stands: more than ``max_requests``
requests, or an input file larger than ``max_bytes`` (the API's limit is per file, so a job
of two 400 MB files is one job of two files, as before). An unsplit job keeps exactly the
shape it always had -- its input files uploaded as they are, its spec digest unchanged --
so an upgrade never re-runs a job that fitted. :func:`needs_split` decides;
:class:`Cutter` cuts; :func:`shard_spec` gives the JobSpec of one shard of a split job.

:class:`Cutter` takes lines one at a time (:meth:`Cutter.add`) or a block of whole request
lines at once (:meth:`Cutter.add_block`, the input validator's fast path: a few ``find``
calls per shard boundary instead of Python work per line); both give the same shards.
Hashing shards costs a second sha256 pass over the bytes, wasted on a job that is not
split; so a cutter may start with ``hashing=False`` and be switched on
(:meth:`Cutter.start_hashing`) once splitting is certain -- shards opened before that are
hashed at :meth:`Cutter.finish` by re-reading them (typically the first shard only).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.config.model import JobSpec, LocalInput
from reconciler.stream.model import Cursor, Shard

# (hasher, bytes) -> None: feed bytes to a shard's hasher (now, or on another thread).
Sink = Callable[[Any, bytes | memoryview], None]


def _update_now(hasher: Any, data: bytes | memoryview) -> None:
    hasher.update(data)


@dataclass(frozen=True)
class RequestTooLarge:
    """A request line longer than a shard file may be: it fits in no shard."""

    at: Cursor
    size: int  # bytes, newline included
    limit: int


@dataclass
class _Open:
    index: int
    first: int
    start: Cursor
    end: Cursor
    hasher: Any  # None: opened before hashing started, hashed again at finish
    requests: int = 0
    size: int = 0


@dataclass
class Cutter:
    """Greedy shard cutting over a stream of request lines.

    Feed every request line of a job in order (:meth:`add`, :meth:`add_block`), each with
    the cursor where it starts, then call :meth:`finish`."""

    max_requests: int
    max_bytes: int
    sink: Sink = _update_now
    hashing: bool = True
    too_large: list[RequestTooLarge] = field(default_factory=list)
    _done: list[_Open] = field(default_factory=list)
    _open: _Open | None = None
    _total: int = 0

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_bytes < 1:
            raise ValueError("shard limits must be positive")

    @property
    def requests(self) -> int:
        """Requests placed so far."""
        return self._total

    def start_hashing(self) -> None:
        """Hash shards from now on (those already open are hashed at :meth:`finish`)."""
        self.hashing = True

    def _place(self, at: Cursor, data: bytes | memoryview, count: int, end: Cursor) -> None:
        current = self._open
        if current is None:
            hasher = hashlib.sha256() if self.hashing else None
            current = _Open(len(self._done), self._total, at, end, hasher)
            self._open = current
        if current.hasher is not None:
            self.sink(current.hasher, data)
        current.requests += count
        current.size += len(data)
        current.end = end
        self._total += count

    def _close(self) -> None:
        if self._open is not None:
            self._done.append(self._open)
        self._open = None

    def add(self, line: bytes, at: Cursor, end: Cursor | None = None) -> None:
        """One request line (ending in ``\\n``) that starts at ``at``; ``end`` is just past
        it in its source (default: ``len(line)`` bytes and one line further)."""
        size = len(line)
        if size > self.max_bytes:
            self._close()  # a shard is always one contiguous run of lines
            self.too_large.append(RequestTooLarge(at, size, self.max_bytes))
            return
        current = self._open
        if current is not None and (
            current.requests >= self.max_requests or current.size + size > self.max_bytes
        ):
            self._close()
        self._place(at, line, 1, end or Cursor(at.source, at.offset + size, at.line + 1))

    def add_block(self, data: bytes, start: int, stop: int, lines: int, at: Cursor) -> None:
        """The ``lines`` request lines ``data[start:stop]``: whole, none blank, each ending
        in ``\\n``; the first starts at ``at`` in its source, the others follow it."""
        view = memoryview(data)
        base = at.offset - start  # data[i] is at byte base + i of the source
        line = at.line
        while lines:
            current = self._open
            room_requests = self.max_requests - (current.requests if current else 0)
            room_bytes = self.max_bytes - (current.size if current else 0)
            here = Cursor(at.source, base + start, line)
            if lines <= room_requests and stop - start <= room_bytes:
                end = Cursor(at.source, base + stop, line + lines)
                self._place(here, view[start:stop], lines, end)
                return
            # A boundary falls in this block: the most lines that fit both limits.
            window = min(stop, start + room_bytes)
            cut = data.rfind(b"\n", start, window) + 1 if room_bytes > 0 else 0
            take = data.count(b"\n", start, cut) if cut > start else 0
            if take > room_requests:
                take, cut = room_requests, start
                for _ in range(take):
                    cut = data.index(b"\n", cut) + 1
            if take == 0:
                nl = data.index(b"\n", start) + 1
                if nl - start > self.max_bytes:
                    # It fits in no shard: reported, and it ends the open shard (a shard is
                    # always one contiguous run of lines).
                    self._close()
                    self.too_large.append(RequestTooLarge(here, nl - start, self.max_bytes))
                    start, lines, line = nl, lines - 1, line + 1
                    continue
                self._close()  # the next line would overflow the open shard
                continue
            self._place(here, view[start:cut], take, Cursor(at.source, base + cut, line + take))
            self._close()
            start, lines, line = cut, lines - take, line + take

    def finish(self, rehash: Callable[[Cursor, Cursor], str] | None = None) -> tuple[Shard, ...]:
        """Every shard, in order (call once every hash handed to ``sink`` is done).
        ``rehash(start, end)`` gives the sha256 of the lines between two cursors, for the
        shards opened before hashing started."""
        self._close()
        shards = []
        for i, o in enumerate(self._done):
            if o.hasher is not None:
                digest = o.hasher.hexdigest()
            elif rehash is not None:
                digest = rehash(o.start, o.end)
            else:
                raise ValueError("shards opened before hashing started need rehash")
            shards.append(Shard(i, o.first, o.requests, o.size, digest, o.start, o.end))
        return tuple(shards)


def cut(
    lines: Iterable[tuple[Cursor, bytes]], max_requests: int, max_bytes: int
) -> tuple[tuple[Shard, ...], list[RequestTooLarge]]:
    """Shards of a stream of positioned request lines (see :func:`.sources.positioned`)."""
    cutter = Cutter(max_requests, max_bytes)
    for at, line in lines:
        cutter.add(line, at)
    return cutter.finish(), cutter.too_large


def needs_split(
    requests: int, file_sizes: Sequence[int], max_requests: int, max_bytes: int
) -> bool:
    """Whether a job must be cut into shards: it does not fit the limits as it stands."""
    return requests > max_requests or any(size > max_bytes for size in file_sizes)


def shard_label(paths: Sequence[str], shard: Shard) -> str:
    """How a shard of local inputs is named in plans: ``data/a.jsonl:1-100000`` (physical
    line numbers, blank lines counted), or ``a.jsonl:5-b.jsonl:20`` across files."""
    a, b = paths[shard.start.source], paths[shard.end.source]
    first, last = shard.start.line + 1, shard.end.line
    if shard.start.source == shard.end.source:
        return f"{a}:{first}-{last}"
    return f"{a}:{first}-{b}:{last}"


def shard_spec(spec: JobSpec, shard: Shard) -> JobSpec:
    """The JobSpec of one shard of a split job: the job itself, holding only that shard's
    requests. Its :attr:`~JobSpec.digest` is the usual digest of that content (a shard of
    local inputs counts as one input: the shard's file), so a shard whose requests do not
    change keeps its digest however the rest of the job changes."""
    if spec.requests_json is not None:
        requests = json.loads(spec.requests_json)[shard.first : shard.stop]
        text = "[" + ",".join(_canonical(r) for r in requests) + "]"
        return dataclasses.replace(spec, requests_json=text, shards=())
    label = shard_label([i.path for i in spec.inputs], shard)
    local = LocalInput(label, shard.sha256, shard.size, shard.requests)
    return dataclasses.replace(spec, inputs=(local,), shards=())


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
