"""Retry sets: which requests of a finished job form the next retry job. Pure.

A *unit* is one submitted batch job of a desired job: a shard (attempt 1) or a retry of it
(attempt 2, 3, ...). A retry job holds only requests that failed in every attempt before
it, so all the requests of one unit have had the same number of attempts: the unit's.

After a unit has finished, each of its requests is

- **succeeded**: it has a line in the output file (for a SUCCESS job: every request that
  has no line in the error file -- output files are not read for SUCCESS jobs);
- **retryable**: its last failure is retryable -- HTTP 408, 429 or 5xx, an error line
  naming no status (an internal timeout), or no result at all because the job ended
  TIMEOUT_EXCEEDED, CANCELLED or FAILED before answering it;
- **final**: it failed with another 4xx (the request itself is wrong: retrying cannot help),
  or it is retryable but has had ``max_attempts`` attempts already (*exhausted*).

The next retry job holds the retryable requests while ``attempt < max_attempts``. So a
retry set never holds a succeeded or a final-failed request, and no request is attempted
more than ``max_attempts`` times.

What is held in memory: the failed custom_ids of the unit's error file (the failures, not
the input); and only for a job that ended without answering everything (TIMEOUT_EXCEEDED,
CANCELLED, FAILED), the custom_ids that have any result -- at most one job's requests
(``max_requests_per_job``), never the whole input. A retry set is then stated as
"every request of the unit except these".

A request without a custom_id cannot be matched to a result, so it is never retried.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reconciler.stream.model import Failure

# Job statuses (the API's): a job that ended without answering every request.
UNANSWERED_STATUSES = frozenset({"TIMEOUT_EXCEEDED", "CANCELLED", "FAILED"})
FINISHED_STATUSES = frozenset({"SUCCESS", *UNANSWERED_STATUSES})


def is_retryable(status_code: int | None) -> bool:
    """A failure worth another attempt: a timeout, a rate limit, a server error, or an
    error line without any HTTP status."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


@dataclass(frozen=True)
class RetrySet:
    """The requests of a retry job, named against the unit that just finished.

    ``complement`` False: exactly the custom_ids in ``ids``. True: every request of that
    unit except those in ``ids`` (and except requests without a custom_id)."""

    ids: frozenset[str]
    complement: bool
    requests: int  # how many requests the retry job holds

    def __contains__(self, custom_id: object) -> bool:
        if not isinstance(custom_id, str):
            return False
        return (custom_id not in self.ids) if self.complement else (custom_id in self.ids)


@dataclass(frozen=True)
class Finished:
    """What is known of one finished unit (read from the API and its result files)."""

    status: str  # SUCCESS, FAILED, TIMEOUT_EXCEEDED or CANCELLED
    requests: int  # requests the unit held
    attempt: int  # attempts its requests have had, this one included (1 for a shard)
    failures: Iterable[Failure]  # its error file's lines, in file order
    # custom_ids with any result (output or error file). Needed only when the status is
    # in UNANSWERED_STATUSES; None there means no result file was produced at all.
    answered: frozenset[str] | None = None
    anonymous: int = 0  # requests of the unit without a custom_id (never matched)


@dataclass(frozen=True)
class Outcome:
    """A finished unit's requests, counted, and its next retry (if any)."""

    succeeded: int
    retryable: int  # failed or unanswered, and retryable (whether or not attempts remain)
    final_4xx: int  # failed with a non-retryable status: shown, never retried
    exhausted: int  # retryable, but max_attempts reached: final too
    unanswered: int  # no result at all (part of ``retryable``)
    retry: RetrySet | None  # None: nothing to retry
    next_attempt: int
    final_failures: tuple[Failure, ...]  # non-retryable ones, for display (in file order)

    @property
    def final(self) -> int:
        return self.final_4xx + self.exhausted


def outcome(unit: Finished, max_attempts: int) -> Outcome:
    """Classify a finished unit's requests and compute its retry set."""
    if unit.status not in FINISHED_STATUSES:
        raise ValueError(f"unit has not finished: {unit.status}")
    last: dict[str, Failure] = {}
    for failure in unit.failures:
        last.pop(failure.custom_id, None)  # keep file order of the last occurrence
        last[failure.custom_id] = failure
    retry_ids = frozenset(cid for cid, f in last.items() if is_retryable(f.status_code))
    finals = tuple(f for f in last.values() if not is_retryable(f.status_code))
    tracked = max(unit.requests - unit.anonymous, 0)
    if unit.status == "SUCCESS":
        failed = min(len(last), tracked)
        unanswered = 0
        succeeded = max(unit.requests - failed, 0)
        pending = len(retry_ids)
        selection_ids, complement = retry_ids, False
    else:
        answered = unit.answered or frozenset()
        answered_failures = answered | last.keys()
        got = min(len(answered_failures), tracked)
        unanswered = tracked - got
        succeeded = len(answered_failures) - len(last)
        pending = unanswered + len(retry_ids)
        # Everything of the unit except what succeeded or failed for good.
        selection_ids = frozenset(answered_failures - retry_ids)
        complement = True
    can_retry = unit.attempt < max_attempts
    retry = RetrySet(selection_ids, complement, pending) if pending and can_retry else None
    return Outcome(
        succeeded=succeeded,
        retryable=pending,
        final_4xx=len(finals),
        exhausted=0 if can_retry else pending,
        unanswered=unanswered,
        retry=retry,
        next_attempt=unit.attempt + 1,
        final_failures=finals,
    )
