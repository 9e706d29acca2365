"""Plain data of the request stream. Imports nothing of the reconciler: ``config.model``
holds these in a JobSpec, and every layer may read them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Cursor:
    """A point in a job's request sources, between two lines.

    ``source`` indexes the job's sources (its ``inputs`` in order; inline ``requests`` and
    generated rows are one source, 0). ``offset`` is the byte offset in that source (for
    inline requests: in their canonical JSONL rendering), ``line`` the number of physical
    lines before this point (blank ones included), so that line ``line + 1`` starts here.
    """

    source: int
    offset: int
    line: int


@dataclass(frozen=True)
class Shard:
    """One consecutive run of a job's requests, submitted as one batch job.

    ``size`` and ``sha256`` are those of the shard's file: its request lines, each ending
    in ``"\\n"`` (blank lines dropped, a missing final newline added), concatenated.
    ``start`` is where its first request line starts, ``end`` just past its last one."""

    index: int  # 0-based, in input order
    first: int  # 0-based index of its first request among all of the job's requests
    requests: int
    size: int
    sha256: str
    start: Cursor
    end: Cursor

    @property
    def stop(self) -> int:
        """One past the index of its last request."""
        return self.first + self.requests


@dataclass(frozen=True)
class Failure:
    """One failed request, as a finished job's error file reports it."""

    custom_id: str
    status_code: int | None  # None: the line names no HTTP status (e.g. an internal timeout)
    message: str = ""  # the error's message, cut short (for display only; untrusted text)
