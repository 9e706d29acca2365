"""Capacity: which creates go now and which wait for the workspace's pending-request cap.

The API caps a workspace's *pending* requests (the ``total_requests`` of its QUEUED and
RUNNING jobs, whoever created them). :func:`admit` is a pure function of what is pending,
the cap, and the creates a plan wants, oldest desired first: creates are admitted in that
order while they fit; the first that does not fit, and every create after it, is deferred
(first come, first served: a large shard is never starved by smaller ones behind it). A
single create larger than the cap can never run: that is an error naming the limit.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class TooLarge(Generic[K]):
    """A create that holds more requests than the workspace may ever have pending."""

    key: K
    requests: int
    limit: int

    def __str__(self) -> str:
        return (
            f"{self.key}: {self.requests:,} requests is more than max_pending_requests"
            f" ({self.limit:,}); lower limits.max_requests_per_job so that shards fit"
        )


@dataclass(frozen=True)
class Admission(Generic[K]):
    now: tuple[K, ...]  # submit these, in this order
    deferred: tuple[K, ...]  # waiting for capacity, in order
    pending: int  # pending requests once ``now`` is submitted
    limit: int
    too_large: tuple[TooLarge[K], ...] = ()

    def waiting_message(self) -> str:
        """``waiting for capacity (N pending of M)``, as plans show deferred creates."""
        return f"waiting for capacity ({self.pending:,} pending of {self.limit:,})"


def admit(pending: int, limit: int, creates: Sequence[tuple[K, int]]) -> Admission[K]:
    """Split ``creates`` ((key, requests), oldest desired first) into those that fit under
    ``limit`` on top of ``pending`` now, and those deferred."""
    too_large = tuple(TooLarge(k, n, limit) for k, n in creates if n > limit)
    now: list[K] = []
    deferred: list[K] = []
    total = max(pending, 0)
    for key, requests in creates:
        if deferred or requests > limit or total + requests > limit:
            deferred.append(key)
            continue
        now.append(key)
        total += requests
    return Admission(tuple(now), tuple(deferred), total, limit, too_large)
