"""Per-field differences between a live job and the desired spec, for the plan to show.

Both sides come in the same shape (:func:`reconciler.tags.desired_fields` and
:meth:`reconciler.live.LiveJob.fields`). Top-level fields are compared directly, which is
all most changes need; only a changed container (``metadata``, ``inputs``, ...) is handed to
deepdiff, so a plan over many changed jobs does not pay deepdiff's setup for every scalar.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from reconciler import requestmap
from reconciler.config.model import JobSpec
from reconciler.plan.model import FieldDiff, PathPart, format_path

# Order in which fields are listed (the order of tags.desired_fields); unknown ones last.
FIELD_ORDER: tuple[str, ...] = (
    "endpoint",
    "model",
    "agent_id",
    "metadata",
    "timeout_hours",
    "inputs",
    "input_files",
    "requests",
)
_RANK = {name: i for i, name in enumerate(FIELD_ORDER)}

SPEC_PSEUDO_FIELD = "spec"
SHORT_DIGEST = 12


def field_diffs(old: Mapping[str, Any], new: Mapping[str, Any]) -> tuple[FieldDiff, ...]:
    """What changed from ``old`` (live) to ``new`` (desired), one FieldDiff per leaf.

    A top-level field that is null on one side is reported whole, as added or removed
    (null means "not used" in this shape). Inside containers, map keys and list items are
    reported one by one (``metadata.team``, ``inputs[0]``).
    """
    diffs: list[FieldDiff] = []
    for name in sorted(old.keys() | new.keys(), key=_field_rank):
        before, after = old.get(name), new.get(name)
        if before == after and type(before) is type(after):
            continue
        if before is None:
            diffs.append(FieldDiff(name, None, after, added=True))
        elif after is None:
            diffs.append(FieldDiff(name, before, None, removed=True))
        elif isinstance(before, Mapping | list) and type(before) is type(after):
            diffs.extend(_container_diffs(name, before, after))
        else:
            diffs.append(FieldDiff(name, before, after))
    return tuple(diffs)


def with_request_detail(
    diffs: tuple[FieldDiff, ...], live_map: str | None, spec: JobSpec
) -> tuple[FieldDiff, ...]:
    """``diffs`` with the ``requests`` change told request by request, when both versions
    are inline and the live job carries a request map (its tag, decoded here: a claim,
    shown, never acted on)."""
    if live_map is None or spec.requests_json is None:
        return diffs
    at = next((i for i, d in enumerate(diffs) if d.path == "requests"), None)
    if at is None or diffs[at].added or diffs[at].removed:
        return diffs
    old = requestmap.decode(live_map)
    if old is None:
        return diffs
    detail = requestmap.diff(old, spec.requests or [])
    return (*diffs[:at], replace(diffs[at], requests=detail), *diffs[at + 1 :])


def spec_pseudo_diff(old_digest: str, new_digest: str) -> FieldDiff:
    """Shown when the digests differ but no field does (a job made by an older tool, or an
    input whose bytes changed beyond what the tags can show)."""
    return FieldDiff(
        SPEC_PSEUDO_FIELD,
        old_digest[:SHORT_DIGEST] if old_digest else None,
        new_digest[:SHORT_DIGEST],
        added=not old_digest,
    )


def _field_rank(name: str) -> tuple[int, str]:
    return (_RANK.get(name, len(_RANK)), name)


def _container_diffs(name: str, before: Any, after: Any) -> list[FieldDiff]:
    # Imported here: deepdiff (and the pydantic it loads) is a fifth of every command's
    # start-up time, and only a plan with a changed container needs it.
    from deepdiff import DeepDiff  # noqa: PLC0415
    from deepdiff.helper import notpresent  # noqa: PLC0415

    tree = DeepDiff(before, after, view="tree", verbose_level=2)
    found: list[tuple[tuple[tuple[int, int, str], ...], FieldDiff]] = []
    for levels in tree.values():
        for level in levels:
            parts: tuple[PathPart, ...] = (name, *level.path(output_format="list"))
            t1, t2 = level.t1, level.t2
            if t1 is notpresent:
                diff = FieldDiff(format_path(parts), None, t2, added=True)
            elif t2 is notpresent:
                diff = FieldDiff(format_path(parts), t1, None, removed=True)
            else:
                diff = FieldDiff(format_path(parts), t1, t2)
            found.append((_parts_key(parts), diff))
    found.sort(key=lambda item: item[0])
    return [diff for _, diff in found]


def _parts_key(parts: tuple[PathPart, ...]) -> tuple[tuple[int, int, str], ...]:
    # List indices sort numerically, map keys alphabetically, never compared to each other.
    return tuple((0, p, "") if isinstance(p, int) else (1, 0, p) for p in parts)
