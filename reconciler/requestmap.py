"""Per-request fingerprints of a job's inline requests, small enough for one metadata tag.

The API never echoes a job's inline requests back, so a plan could only say that "the
requests" changed (their digest). ``apply`` stamps this map on every inline job
(``reconciler.request-map``) and ``plan`` compares it with the desired requests: which
``custom_id`` was added, removed, or changed, and which top-level fields of its ``body``
changed. Planning stays read-only: the map comes with the job listing.

A tag value holds at most 512 characters, so the map is written at the most detailed of
three levels that fits:

    f:KEY,KEY;ID=ddd...;ID=ddd...   fields: per request, 3 base64url characters of the
                                    sha256 of each body field named in the header (in its
                                    order; "..." when the request has no such field)
    b:ID=dddd;ID=dddd               bodies: 4 characters of the sha256 of each whole body
    i:ID;ID                         ids only: additions and removals, not edits

``ID`` is the ``custom_id`` percent-encoded (so ``;``, ``=``, ``,`` never appear raw), or
``!`` for a request without one (matched by position). A job with too many requests for
even the id list carries no map, and its plan shows the digests and counts as before.
A digest of 18 bits can miss a change (one in 262,144): the job's spec digest still
catches it, the per-request list then simply says less.

Tags are claims (DESIGN.md section 11): :func:`decode` returns None for anything that is
not exactly this format, and nothing read from it is trusted beyond being shown.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import quote, unquote

from reconciler import api

Level = Literal["fields", "bodies", "ids"]
Kind = Literal["added", "removed", "changed"]

FIELD_CHARS: Final = 3
BODY_CHARS: Final = 4
NO_ID: Final = "!"
ABSENT: Final = "." * FIELD_CHARS
LISTED: Final = 100  # changes kept in a plan (the counts cover all of them)
_PREFIX: Final[dict[Level, str]] = {"fields": "f:", "bodies": "b:", "ids": "i:"}
_ALPHABET: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class Fingerprint:
    """One request as the map knows it. ``fields``: body field -> digest (level
    ``fields``); ``body``: the whole body's digest (level ``bodies``)."""

    custom_id: str | None
    fields: Mapping[str, str] | None = None
    body: str | None = None


@dataclass(frozen=True)
class RequestMap:
    level: Level
    requests: tuple[Fingerprint, ...]


@dataclass(frozen=True)
class RequestChange:
    """``label`` is the custom_id, or ``#N`` (0-based position) for a request without one;
    ``fields`` the body fields that changed (``body.messages``), for ``changed``."""

    label: str
    kind: Kind
    fields: tuple[str, ...] = ()


@dataclass(frozen=True)
class RequestsDiff:
    """How the inline requests changed, request by request. ``changes`` lists the first
    :data:`LISTED` in order (the desired order, removed ones where they were); the counts
    cover all. ``unknown``: requests on both sides whose edits the live map cannot show
    (it holds their ids only)."""

    level: Level
    added: int
    removed: int
    changed: int
    unchanged: int
    unknown: int
    changes: tuple[RequestChange, ...]

    @property
    def total_changes(self) -> int:
        return self.added + self.removed + self.changed


# -- fingerprints ------------------------------------------------------------------------------


def _digest(value: Any, chars: int) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(hashlib.sha256(raw.encode()).digest()).decode()[:chars]


def _custom_id(request: Mapping[str, Any]) -> str | None:
    value = request.get("custom_id")
    return None if value is None else str(value)


def fingerprints(requests: Sequence[Mapping[str, Any]], level: Level) -> RequestMap:
    """The desired requests at ``level`` (what :func:`encode` writes, before encoding)."""
    prints = []
    for request in requests:
        body = request.get("body")
        cid = _custom_id(request)
        if level == "fields":
            fields = body if isinstance(body, Mapping) else {}
            prints.append(
                Fingerprint(cid, fields={k: _digest(v, FIELD_CHARS) for k, v in fields.items()})
            )
        elif level == "bodies":
            prints.append(Fingerprint(cid, body=_digest(body, BODY_CHARS)))
        else:
            prints.append(Fingerprint(cid))
    return RequestMap(level, tuple(prints))


# -- the tag -----------------------------------------------------------------------------------


def encode(
    requests: Sequence[Mapping[str, Any]], *, limit: int = api.METADATA_VALUE_MAX
) -> str | None:
    """The tag value for ``requests``: the most detailed level within ``limit`` characters,
    or None when not even the ids fit."""
    if not requests or 2 * len(requests) > limit + 1:  # every entry takes 2 characters
        return None
    for level in ("fields", "bodies", "ids"):
        text = _write(fingerprints(requests, level))
        if len(text) <= limit:
            return text
    return None


def _write(m: RequestMap) -> str:
    ids = [NO_ID if p.custom_id is None else quote(p.custom_id, safe="") for p in m.requests]
    if m.level == "ids":
        return _PREFIX["ids"] + ";".join(ids)
    if m.level == "bodies":
        return _PREFIX["bodies"] + ";".join(
            f"{i}={p.body}" for i, p in zip(ids, m.requests, strict=True)
        )
    keys = sorted({k for p in m.requests for k in p.fields or {}})
    head = ",".join(quote(k, safe="") for k in keys)
    entries = [
        f"{i}=" + "".join((p.fields or {}).get(k, ABSENT) for k in keys)
        for i, p in zip(ids, m.requests, strict=True)
    ]
    return _PREFIX["fields"] + ";".join([head, *entries])


def decode(value: object) -> RequestMap | None:
    """A map read back from a live job's tag; None unless it is well-formed."""
    if not isinstance(value, str) or len(value) > api.METADATA_VALUE_MAX:
        return None
    for level, prefix in _PREFIX.items():
        if value.startswith(prefix):
            try:
                found = _read(level, value[len(prefix) :])
            except ValueError:
                return None
            return found if _unique(found) else None
    return None


def _read(level: Level, text: str) -> RequestMap:
    parts = text.split(";")
    if level == "ids":
        return RequestMap(level, tuple(Fingerprint(_id(part)) for part in parts))
    if level == "bodies":
        prints = []
        for part in parts:
            raw_id, sep, digest = part.partition("=")
            if not sep or len(digest) != BODY_CHARS or not set(digest) <= _ALPHABET:
                raise ValueError(part)
            prints.append(Fingerprint(_id(raw_id), body=digest))
        return RequestMap(level, tuple(prints))
    head, *entries = parts
    keys = [unquote(k, errors="strict") for k in head.split(",")] if head else []
    if len(set(keys)) != len(keys):
        raise ValueError(head)
    prints = []
    for part in entries:
        raw_id, sep, digests = part.partition("=")
        if not sep or len(digests) != FIELD_CHARS * len(keys):
            raise ValueError(part)
        fields = {}
        for n, key in enumerate(keys):
            digest = digests[n * FIELD_CHARS : (n + 1) * FIELD_CHARS]
            if digest == ABSENT:
                continue
            if not set(digest) <= _ALPHABET:
                raise ValueError(part)
            fields[key] = digest
        prints.append(Fingerprint(_id(raw_id), fields=fields))
    return RequestMap(level, tuple(prints))


def _id(raw: str) -> str | None:
    if raw == NO_ID:
        return None
    if not raw:
        raise ValueError("empty id")
    return unquote(raw, errors="strict")


def _unique(m: RequestMap) -> bool:
    ids = [p.custom_id for p in m.requests if p.custom_id is not None]
    return len(set(ids)) == len(ids)


# -- the diff ----------------------------------------------------------------------------------


def _keyed(prints: Sequence[Fingerprint]) -> dict[tuple[bool, str], tuple[int, Fingerprint]]:
    """Requests by custom_id, or by position for those without one."""
    return {
        (True, p.custom_id) if p.custom_id is not None else (False, str(n)): (n, p)
        for n, p in enumerate(prints)
    }


def _label(key: tuple[bool, str]) -> str:
    has_id, value = key
    return value if has_id else f"#{value}"


def diff(old: RequestMap, new_requests: Sequence[Mapping[str, Any]]) -> RequestsDiff:
    """What changed from the live job's map ``old`` to ``new_requests`` (the desired
    ones), at the level of detail ``old`` has."""
    new = fingerprints(new_requests, old.level)
    before, after = _keyed(old.requests), _keyed(new.requests)
    # Desired order; a removed request is listed where it stood among the old ones.
    events: list[tuple[float, RequestChange]] = []
    counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0, "unknown": 0}
    for key, (position, now) in after.items():
        found = before.get(key)
        if found is None:
            counts["added"] += 1
            events.append((position, RequestChange(_label(key), "added")))
            continue
        if old.level == "ids":
            counts["unknown"] += 1
            continue
        fields = _changed_fields(found[1], now)
        if fields is None:
            counts["unchanged"] += 1
        else:
            counts["changed"] += 1
            events.append((position, RequestChange(_label(key), "changed", fields)))
    for key, (position, _) in before.items():
        if key not in after:
            counts["removed"] += 1
            events.append((position - 0.5, RequestChange(_label(key), "removed")))
    events.sort(key=lambda item: item[0])
    return RequestsDiff(
        level=old.level,
        added=counts["added"],
        removed=counts["removed"],
        changed=counts["changed"],
        unchanged=counts["unchanged"],
        unknown=counts["unknown"],
        changes=tuple(change for _, change in events[:LISTED]),
    )


def _changed_fields(old: Fingerprint, new: Fingerprint) -> tuple[str, ...] | None:
    """None when unchanged; else the body fields that changed (empty: "the body")."""
    if old.fields is not None and new.fields is not None:
        keys = sorted(old.fields.keys() | new.fields.keys())
        changed = tuple(f"body.{k}" for k in keys if old.fields.get(k) != new.fields.get(k))
        return changed or None
    return None if old.body == new.body else ()


# -- in plan files and JSON --------------------------------------------------------------------


def to_json(d: RequestsDiff) -> dict[str, Any]:
    return {
        "detail": d.level,
        "added": d.added,
        "removed": d.removed,
        "changed": d.changed,
        "unchanged": d.unchanged,
        "unknown": d.unknown,
        "changes": [
            {"custom_id": c.label, "change": c.kind, "fields": list(c.fields)} for c in d.changes
        ],
    }


def from_json(raw: object) -> RequestsDiff:
    """The inverse of :func:`to_json`; ValueError for anything else (an edited plan file)."""
    if not isinstance(raw, dict):
        raise ValueError("not an object")
    level = raw.get("detail")
    if level not in _PREFIX:
        raise ValueError(f"unknown detail {level!r}")
    counts = {}
    for key in ("added", "removed", "changed", "unchanged", "unknown"):
        value = raw.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{key} should be a count")
        counts[key] = value
    changes = []
    for item in raw.get("changes") or []:
        if not isinstance(item, dict):
            raise ValueError("a change is not an object")
        label, kind, fields = item.get("custom_id"), item.get("change"), item.get("fields")
        if not isinstance(label, str) or kind not in ("added", "removed", "changed"):
            raise ValueError("a change needs a custom_id and a kind")
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise ValueError("fields should be strings")
        changes.append(RequestChange(label, kind, tuple(fields)))
    return RequestsDiff(level=level, changes=tuple(changes), **counts)
