"""How many lines an input file gained and lost: the digest view of ``inputs[N]`` plus
``# 12 lines added, 3 removed`` when the old file's content is known.

Lines are compared as a multiset (order ignored: a batch's requests are independent), by
an 8-byte digest each, so memory grows with the number of lines, never with their size;
the caller bounds the bytes read (:class:`TooLarge`). Blank lines do not count (the API
skips them). Pure: bytes in, counts out; the shell decides which files to read.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace

from reconciler.plan.model import Change, FieldDiff, Note, Plan


class TooLarge(Exception):
    """More bytes than the limit: the counts would cost too much to be worth showing."""


class LineDigests:
    """A binary sink (``write(bytes)``) that digests every line written to it."""

    def __init__(self, limit: int) -> None:
        self.counts: Counter[bytes] = Counter()
        self._limit = limit
        self._size = 0
        self._tail = b""

    def write(self, chunk: bytes) -> int:
        self._size += len(chunk)
        if self._size > self._limit:
            raise TooLarge(f"more than {self._limit} bytes")
        *lines, self._tail = (self._tail + chunk).split(b"\n")
        for line in lines:
            self._add(line)
        return len(chunk)

    def seekable(self) -> bool:  # a download into it cannot be rewound: no retry mid-body
        return False

    def tell(self) -> int:
        return self._size

    def finish(self) -> Counter[bytes]:
        if self._tail:
            self._add(self._tail)
            self._tail = b""
        return self.counts

    def _add(self, line: bytes) -> None:
        line = line.rstrip(b"\r")
        if line.strip():
            self.counts[hashlib.blake2b(line, digest_size=8).digest()] += 1


def added_removed(old: Counter[bytes], new: Counter[bytes]) -> tuple[int, int]:
    return sum((new - old).values()), sum((old - new).values())


def with_line_counts(plan: Plan, counts: Mapping[tuple[str, str], tuple[int, int]]) -> Plan:
    """``plan`` with ``(job name, diff path) -> (added, removed)`` on those diffs."""
    if not counts:
        return plan

    def diffs(name: str, found: tuple[FieldDiff, ...]) -> tuple[FieldDiff, ...]:
        return tuple(
            replace(d, lines=counts[(name, d.path)]) if (name, d.path) in counts else d
            for d in found
        )

    changes: tuple[Change, ...] = tuple(
        replace(c, diffs=diffs(c.name, c.diffs)) for c in plan.changes
    )
    notes: tuple[Note, ...] = tuple(replace(n, diffs=diffs(n.name, n.diffs)) for n in plan.notes)
    return replace(plan, changes=changes, notes=notes)
