"""Injected per-request failures: which requests of a job fail, and how, reproducibly.

``--fail-requests F`` makes a fraction F of requests fail transiently (429 or 500 lines in
the error file) and ``--fail-requests-permanent F`` a fraction fail for good (400). The
emulator reads none of the reconciler's tags, so it counts attempts itself: the n-th time
this database runs a request with a given ``custom_id`` and the same body (canonical JSON)
is attempt n. A transient decision is drawn from (seed, custom_id, body digest, n), so a
retry (attempt n + 1) is drawn afresh and can succeed; a permanent one from (seed,
custom_id, body digest) alone, so every attempt of that request fails the same way.

Pure functions: the store counts attempts, :mod:`.results` writes the lines.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

KEY_BYTES: Final = 16
RATE_LIMITED: Final = 429
SERVER_ERROR: Final = 500
REJECTED: Final = 400


_CANONICAL: Final = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(custom_id: str, body: object) -> bytes:
    """Identity of a request across jobs: its custom_id and its body's canonical JSON."""
    canonical = _CANONICAL.encode(body)
    text = f"{custom_id}\0{canonical}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:KEY_BYTES]


def _uniform(*parts: object) -> float:
    """A number in [0, 1) drawn from ``parts`` (the same parts, the same number)."""
    digest = hashlib.sha256("\0".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:7], "big") / float(1 << 56)


def decide(
    key: bytes, attempt: int, *, transient: float, permanent: float, seed: int | None = None
) -> int | None:
    """The status an injected failure answers this attempt of a request (None: no failure).

    ``permanent`` requests fail with 400 at every attempt; among the others a fraction
    ``transient`` fails with 429 or 500 at this attempt."""
    if permanent > 0 and _uniform(seed, key.hex(), "permanent") < permanent:
        return REJECTED
    if transient > 0:
        draw = _uniform(seed, key.hex(), attempt, "transient")
        if draw < transient:
            return (
                RATE_LIMITED if _uniform(seed, key.hex(), attempt, "kind") < 0.5 else SERVER_ERROR
            )
    return None


_MESSAGES: Final = {
    RATE_LIMITED: (
        "Rate limit exceeded while processing this request; retry it (emulator --fail-requests)",
        "rate_limit_error",
    ),
    SERVER_ERROR: (
        "Internal server error while processing this request; retry it (emulator --fail-requests)",
        "internal_server_error",
    ),
    REJECTED: (
        "The request was rejected and will be on every attempt"
        " (emulator --fail-requests-permanent)",
        "invalid_request_error",
    ),
}


def failure_body(status: int) -> dict[str, Any]:
    """The response body of an injected failure, in the API's error shape."""
    message, kind = _MESSAGES[status]
    return {"object": "error", "message": message, "type": kind, "param": None, "code": None}
