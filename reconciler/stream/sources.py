"""Every request source as one currency: an iterator of request lines, in input order.

A request line is ``bytes`` ending in ``b"\\n"``: a local file's non-blank lines exactly as
written (a missing final newline added), an inline request's canonical JSON, a generated
row's request. Files are read in blocks, never whole. :func:`positioned` also says where
each line starts, which is how a shard's lines are found again (:mod:`.build`).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Final

from reconciler.stream.model import Cursor

BLOCK_BYTES: Final = 1024 * 1024


def is_blank(raw: bytes) -> bool:
    """Blank and whitespace-only lines are not requests (``raw`` without its newline)."""
    return not raw or raw.isspace()


def open_regular(path: Path) -> int:
    """A read-only descriptor of ``path``, refusing symlinks and anything but a regular
    file: the checks are made on the very file that is then read."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path}: is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def positioned(
    paths: Sequence[Path],
    *,
    start: Cursor | None = None,
    end: Cursor | None = None,
    block_bytes: int = BLOCK_BYTES,
    max_line: int | None = None,
) -> Iterator[tuple[Cursor, bytes]]:
    """(where it starts, the line) for each request line of ``paths``, in order, from
    ``start`` (a point between lines) up to ``end`` (exclusive). Blank lines are skipped;
    each line ends with ``"\\n"``. Lines longer than ``max_line`` are skipped (memory stays
    bounded whatever the file holds)."""
    first = start or Cursor(0, 0, 0)
    for source in range(first.source, len(paths)):
        if end is not None and source > end.source:
            return
        offset = first.offset if source == first.source else 0
        line = first.line if source == first.source else 0
        stop = end.offset if end is not None and source == end.source else None
        fd = open_regular(paths[source])
        with os.fdopen(fd, "rb") as fh:
            fh.seek(offset)
            pending = b""
            skipping = False
            while True:
                want = block_bytes if stop is None else min(block_bytes, stop - offset)
                block = fh.read(want) if want > 0 else b""
                if not block:
                    break
                data = pending + block if pending else block
                base = offset - len(pending)
                offset += len(block)
                at = 0
                if skipping:
                    nl = data.find(b"\n")
                    if nl < 0:
                        pending = b""
                        continue
                    at, skipping = nl + 1, False
                    line += 1
                cut = data.rfind(b"\n") + 1
                pending = data[max(cut, at) :]
                if max_line is not None and len(pending) > max_line:
                    pending, skipping = b"", True
                while at < cut:
                    nl = data.index(b"\n", at)
                    line += 1
                    raw = data[at:nl]
                    if not is_blank(raw):
                        yield Cursor(source, base + at, line - 1), data[at : nl + 1]
                    at = nl + 1
            if skipping:
                line += 1
            elif pending:
                line += 1
                if not is_blank(pending):
                    yield Cursor(source, offset - len(pending), line - 1), pending + b"\n"


def file_lines(paths: Sequence[Path], *, block_bytes: int = BLOCK_BYTES) -> Iterator[bytes]:
    """The request lines of local input files, in order."""
    for _, line in positioned(paths, block_bytes=block_bytes):
        yield line


def canonical_line(request: object) -> bytes:
    """One inline request as a request line: its canonical JSON (as digests use it)."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode() + b"\n"


def inline_lines(requests: Iterable[object]) -> Iterator[bytes]:
    """Inline ``requests`` (already decoded) as request lines, in order."""
    for request in requests:
        yield canonical_line(request)


def inline_positioned(requests: Iterable[object]) -> Iterator[tuple[Cursor, bytes]]:
    """Inline requests with their cursors: one source, one line per request."""
    offset = 0
    for i, request in enumerate(requests):
        line = canonical_line(request)
        yield Cursor(0, offset, i), line
        offset += len(line)
