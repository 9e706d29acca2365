"""Fault injection: what a flaky API looks like, reproducibly.

The configuration (:class:`Faults`) is data persisted in the emulator's database, so a test
process can switch faults on for a server running in another process. The decisions
(:class:`FaultInjector`) are per process: one seeded random generator and one token bucket
shared by every thread of the process serving that database.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import asdict, dataclass, fields
from typing import Any

from reconciler.api import MAX_PENDING_REQUESTS, MAX_REQUESTS_PER_JOB

MAX_LATENCY = 600.0  # seconds: beyond it a request would outlive any client's timeout
MAX_RETRY_AFTER = 86_400
MAX_RATE_LIMIT = 1_000_000.0
MAX_LIMIT = 1_000_000_000  # requests: the largest per-job or pending limit one can set


@dataclass(frozen=True)
class Faults:
    """Faults applied to API requests (never to the ``/_emulator/`` admin API), and the
    API's request limits.

    Fractions are probabilities in [0, 1], drawn independently per request. Every number is
    finite and bounded: a setting the emulator cannot honour is refused, never stored.
    """

    latency: float = 0.0  # seconds added to every request, before anything else
    rate_429: float = 0.0  # fraction answered 429 rate_limit_error with Retry-After
    rate_5xx: float = 0.0  # fraction answered 500, 502 or 503
    drop_creates: float = 0.0  # fraction of job creates committed, then answered by nothing
    rate_limit: float | None = None  # requests per second per process; beyond it, 429
    retry_after: int = 1  # the Retry-After (seconds) sent with injected 429s
    # Per batch request (lines of the error file), see outcomes.py:
    fail_requests: float = 0.0  # fraction failing transiently (429/500), per attempt
    fail_requests_permanent: float = 0.0  # fraction failing for good (400)
    # The API's limits, enforced at create (defaults: the API's published ones):
    max_requests_per_job: int = MAX_REQUESTS_PER_JOB
    max_pending_requests: int = MAX_PENDING_REQUESTS  # in QUEUED/RUNNING jobs, all users

    def __post_init__(self) -> None:
        for name in ("rate_429", "rate_5xx", "drop_creates", "fail_requests",
                     "fail_requests_permanent"):  # fmt: skip
            value = getattr(self, name)
            if not (isinstance(value, float | int) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be a fraction in [0, 1], not {value!r}")
        if not 0 <= self.latency <= MAX_LATENCY:  # also false for NaN
            raise ValueError(f"latency must be 0..{MAX_LATENCY:g} seconds, not {self.latency!r}")
        if self.rate_limit is not None and not 0 < self.rate_limit <= MAX_RATE_LIMIT:
            raise ValueError(
                f"rate_limit must be > 0 and <= {MAX_RATE_LIMIT:g} requests per second,"
                f" not {self.rate_limit!r}"
            )
        if not 0 <= self.retry_after <= MAX_RETRY_AFTER:
            raise ValueError(
                f"retry_after must be 0..{MAX_RETRY_AFTER} seconds, not {self.retry_after!r}"
            )
        for name in ("max_requests_per_job", "max_pending_requests"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_LIMIT:
                raise ValueError(f"{name} must be 1..{MAX_LIMIT} requests, not {value!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: object) -> Faults:
        """Build from a JSON object; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(unknown)[:500]}")
        values: dict[str, Any] = {}
        for name, value in data.items():
            if name == "rate_limit" and value is None:
                values[name] = None
            elif name in _INTEGERS:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(f"{name} must be an integer")
                values[name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number")
                number = float(value) if abs(value) < 1e300 else math.inf
                if not math.isfinite(number):
                    raise ValueError(f"{name} must be a finite number")
                values[name] = number
        return cls(**values)


_INTEGERS = frozenset({"retry_after", "max_requests_per_job", "max_pending_requests"})


@dataclass(frozen=True)
class Decision:
    """What to do with one request before (or after) handling it."""

    status: int | None = None  # answer with this error status instead of handling
    retry_after: int | None = None
    drop: bool = False  # handle and commit, then drop the response


class _TokenBucket:
    """``rate`` requests per second with bursts of up to ``rate``; real (monotonic) time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._tokens = 0.0
        self._stamp = 0.0

    def take(self, rate: float) -> int | None:
        """Take a token; None when granted, else the seconds to wait (for Retry-After)."""
        with self._lock:
            now = time.monotonic()
            if self._rate != rate:  # (re)configured: start full
                self._rate, self._tokens, self._stamp = rate, rate, now
            self._tokens = min(rate, self._tokens + (now - self._stamp) * rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return max(1, math.ceil((1.0 - self._tokens) / rate))


class FaultInjector:
    """Per-process fault decisions: a seeded generator makes a run reproducible."""

    def __init__(self, seed: int | None) -> None:
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._bucket = _TokenBucket()

    def reseed(self, seed: int | None) -> None:
        with self._lock:
            self._rng = random.Random(seed)

    def before(self, faults: Faults, *, is_create: bool) -> Decision:
        """Decide a request's fate. Draws happen in a fixed order so seeds replay exactly."""
        if faults.rate_limit is not None:
            wait = self._bucket.take(faults.rate_limit)
            if wait is not None:
                return Decision(status=429, retry_after=wait)
        with self._lock:
            draw_429 = self._rng.random()
            draw_5xx = self._rng.random()
            pick_5xx = self._rng.choice((500, 502, 503))
            draw_drop = self._rng.random()
        if draw_429 < faults.rate_429:
            return Decision(status=429, retry_after=faults.retry_after)
        if draw_5xx < faults.rate_5xx:
            return Decision(status=pick_5xx)
        return Decision(drop=is_create and draw_drop < faults.drop_creates)
