"""A job's whole life as a pure function of time.

The timeline is fixed when the job is created (and once more when it is cancelled), so
changing the emulator's speed later never moves jobs that already exist, and every process
reading the database computes the same status at the same instant. The same rule exists
twice — :meth:`Timeline.status` in Python and :data:`STATUS_SQL` for filtering in SQLite —
and a test holds them equal.

At speed 1 a job waits ``QUEUE_SECONDS`` in QUEUED, then runs ``REQUESTS_PER_SECOND``
requests per second; cancelling takes ``CANCEL_SECONDS``. Speed divides all three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from reconciler.api import Status

QUEUE_SECONDS = 1.0
REQUESTS_PER_SECOND = 50.0
CANCEL_SECONDS = 0.5

# Status at :now of a row of the jobs table; must agree with Timeline.status.
STATUS_SQL = (
    "(CASE WHEN :now >= end_at THEN final_status"
    " WHEN cancel_at IS NOT NULL THEN 'CANCELLATION_REQUESTED'"
    " WHEN :now >= start_at THEN 'RUNNING'"
    " ELSE 'QUEUED' END)"
)


@dataclass(frozen=True)
class Counts:
    completed: int
    succeeded: int
    failed: int


@dataclass(frozen=True)
class Timeline:
    """When a job starts and ends, how it ends, and how many of its requests fail.

    ``bad`` requests (malformed bodies, decided at create time) fail; the others succeed.
    Failures are spread evenly over the run, so counts grow together and reach exactly
    ``total - bad`` / ``bad`` when the run completes.
    """

    created_at: float
    start_at: float  # leaves QUEUED
    run_end_at: float  # when all requests would be done
    end_at: float  # reaches final_status (earlier than run_end_at on timeout or cancel)
    final_status: Status
    total: int
    bad: int
    cancel_at: float | None = None

    @classmethod
    def plan(
        cls, *, now: float, total: int, bad: int, speed: float, timeout_seconds: float
    ) -> Timeline:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        if not 0 <= bad <= total:
            raise ValueError("bad requests must be between 0 and total")
        start = now + QUEUE_SECONDS / speed
        run_end = start + total / (REQUESTS_PER_SECOND * speed)
        deadline = now + timeout_seconds
        if run_end > deadline:
            end, final = deadline, Status.TIMEOUT_EXCEEDED
        else:
            end, final = run_end, (Status.FAILED if bad == total else Status.SUCCESS)
        return cls(now, start, run_end, end, final, total, bad)

    def cancelled(self, now: float, speed: float) -> Timeline:
        """The timeline after a cancel request at ``now``: counts freeze, CANCELLED follows."""
        return replace(
            self, cancel_at=now, end_at=now + CANCEL_SECONDS / speed, final_status=Status.CANCELLED
        )

    def status(self, now: float) -> Status:
        if now >= self.end_at:
            return self.final_status
        if self.cancel_at is not None:
            return Status.CANCELLATION_REQUESTED
        if now >= self.start_at:
            return Status.RUNNING
        return Status.QUEUED

    def _horizon(self, now: float) -> float:
        """The last instant at which requests were still being processed."""
        horizon = min(now, self.end_at)
        if self.cancel_at is not None:
            horizon = min(horizon, self.cancel_at)
        return horizon

    def counts(self, now: float) -> Counts:
        horizon = self._horizon(now)
        if horizon < self.start_at or self.total == 0:
            return Counts(0, 0, 0)
        if horizon >= self.run_end_at:
            completed = self.total
        else:
            fraction = (horizon - self.start_at) / (self.run_end_at - self.start_at)
            completed = min(self.total, math.floor(self.total * fraction))
        failed = self.bad * completed // self.total
        return Counts(completed, completed - failed, failed)

    def final_counts(self) -> Counts:
        return self.counts(self.end_at)

    def started_at(self, now: float) -> float | None:
        return self.start_at if self.start_at <= self._horizon(now) else None

    def completed_at(self, now: float) -> float | None:
        return self.end_at if now >= self.end_at else None
