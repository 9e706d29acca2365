"""What every view of a plan says the same way: headlines, and each job's block as lines.

A block is a list of :class:`Line` (depth, marker, text), Terraform's layout without the
spacing: the text view indents it, the markdown view moves the markers to column 0 for
GitHub's diff highlighting. Nothing here knows about colour, nor escapes: the text holds
names, ids and values as they are (read from the API, they may hold anything), and each
view escapes it for its medium with :mod:`reconciler.render.safe`.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, assert_never

from reconciler.config.model import JobSpec
from reconciler.plan.model import (
    Action,
    Change,
    FieldDiff,
    JobRef,
    Note,
    NoteKind,
    Reason,
    Targeting,
)
from reconciler.requestmap import RequestsDiff

KNOWN_AFTER_APPLY: Final = "(known after apply)"
REQUESTS_SHOWN: Final = 5  # changed inline requests listed one by one; the rest as counts

# Legend wording, in ACTION_ORDER.
LEGEND: Final[dict[Action, str]] = {
    Action.CREATE: "create",
    Action.REPLACE: "replace (cancel, then create)",
    Action.CANCEL: "cancel",
    Action.DELETE: "delete",
}


@dataclass(frozen=True)
class Line:
    """One line of a job block. ``depth`` 0 is the block's own line, 1 its attributes,
    2 the items of a map or list attribute; ``marker`` is an action symbol or ``""``."""

    depth: int
    marker: str
    text: str


def value(v: Any) -> str:
    """A JSON value on one line, as Terraform quotes it."""
    return json.dumps(v, ensure_ascii=False)


def changed_fields(diffs: Sequence[FieldDiff]) -> str:
    """``model, inputs`` from the diffs' top-level fields, in order, each once."""
    return ", ".join(dict.fromkeys(d.field for d in diffs))


def progress(ref: JobRef) -> str:
    """``"RUNNING" (40/100)``: the status, and requests done out of total once known."""
    shown = value(str(ref.status))
    if ref.total_requests:
        shown += f" ({ref.completed_requests}/{ref.total_requests})"
    return shown


def targeting_line(targeting: Targeting | None) -> str | None:
    """``Targeted: 2 of 40 jobs (--target 'eval-*'); ...``, when only some jobs are planned."""
    if targeting is None or not targeting.limited:
        return None
    flags = [f"--target {shlex.quote(t)}" for t in targeting.selection.targets]
    flags += [f"--exclude {shlex.quote(x)}" for x in targeting.selection.excludes]
    n = targeting.total
    return (
        f"Targeted: {len(targeting.selected)} of {n} job{'s' if n != 1 else ''} "
        f"({', '.join(flags)}); the others are not planned."
    )


def headline(change: Change) -> str:
    """The ``# ...`` line above a job's block: what happens to it, and why."""
    name = change.name
    if change.reason is Reason.REQUESTED:
        text = f"{name} will be replaced, as requested"
        if change.then_delete:
            text += f"; the old job will be deleted ({Reason.HISTORY_LIMIT.phrase})"
        return text
    match change.action:
        case Action.CREATE:
            if change.reason is Reason.RETRY and change.previous is not None:
                limit = f" of {change.spec.max_attempts}" if change.spec is not None else ""
                return (
                    f"{name} will be retried: attempt {change.attempt}{limit} "
                    f"(job {change.previous.id} ended {change.previous.status})"
                )
            if change.reason is Reason.SPEC_CHANGED:
                return f"{name} will get a new version: {changed_fields(change.diffs)} changed"
            return f"{name} will be created"
        case Action.REPLACE:
            text = f"{name} must be replaced: {changed_fields(change.diffs)} changed"
            if change.then_delete:
                text += f"; the old job will be deleted ({Reason.HISTORY_LIMIT.phrase})"
            return text
        case Action.CANCEL:
            then = ", then deleted" if change.then_delete else ""
            return f"{name} will be cancelled{then} ({change.reason.phrase})"
        case Action.DELETE:
            once = " once its cancellation completes" if change.await_terminal else ""
            return f"{name} will be deleted{once} ({change.reason.phrase})"
        case _:
            assert_never(change.action)


def note_headline(note: Note) -> str:
    job = note.live.id
    match note.kind:
        case NoteKind.WAITING:
            return (
                f"{note.name} will be replaced once job {job} ends (on_change: wait): "
                f"{changed_fields(note.diffs)} changed"
            )
        case NoteKind.EXHAUSTED:
            return f"{note.name} will not be retried"
        case NoteKind.IN_PROGRESS:
            return f"{note.name} is in progress"
        case NoteKind.DONE:
            return f"{note.name} is done"
        case _:
            assert_never(note.kind)


# -- blocks ------------------------------------------------------------------------------


def change_block(change: Change, cost: str | None = None) -> list[Line]:
    """The lines of one change's block, from ``job "name" {`` to ``}``; ``cost`` is the
    estimate's line of a create or replace (:mod:`reconciler.render.cost`)."""
    rows: list[tuple[str, str, list[Line]]] = []  # (marker, attribute, value lines)
    match change.action:
        case Action.CREATE:
            if change.previous is not None:
                prev = change.previous
                rows.append(("", "previous", _one(f"{value(prev.id)} ({prev.status})")))
            if change.reason is Reason.NEW and change.spec is not None:
                rows.extend(_spec_rows(change.spec))
            else:
                rows.extend(_diff_rows(change.diffs))
            rows.append(("+", "attempt", _one(str(change.attempt))))
            rows.append(("+", "id", _one(KNOWN_AFTER_APPLY)))
        case Action.REPLACE:
            assert change.live is not None
            rows.append(("~", "id", _one(f"{value(change.live.id)} -> {KNOWN_AFTER_APPLY}")))
            rows.append(("", "status", _one(progress(change.live))))
            rows.extend(_diff_rows(change.diffs))
        case Action.CANCEL | Action.DELETE:
            assert change.live is not None
            rows.append(("", "id", _one(value(change.live.id))))
            rows.append(("", "status", _one(progress(change.live))))
        case _:
            assert_never(change.action)
    if cost is not None:
        rows.append(("", "cost", _one(cost)))
    return _block(change.action.symbol, change.name, rows)


def note_block(note: Note) -> list[Line]:
    rows: list[tuple[str, str, list[Line]]] = [
        ("", "id", _one(value(note.live.id))),
        ("", "status", _one(progress(note.live))),
        *_diff_rows(note.diffs),
    ]
    return _block("", note.name, rows)


def _one(text: str) -> list[Line]:
    return [Line(1, "", text)]


def _block(symbol: str, name: str, rows: list[tuple[str, str, list[Line]]]) -> list[Line]:
    width = max((len(attr) for _, attr, _ in rows), default=0)
    lines = [Line(0, symbol, f'job "{name}" {{')]
    for marker, attr, body in rows:
        first, *rest = body
        lines.append(Line(1, marker, f"{attr.ljust(width)} = {first.text}"))
        lines.extend(rest)
    lines.append(Line(0, "", "}"))
    return lines


def _spec_rows(spec: JobSpec) -> list[tuple[str, str, list[Line]]]:
    rows: list[tuple[str, str, list[Line]]] = [("+", "endpoint", _one(value(spec.endpoint)))]
    if spec.model is not None:
        rows.append(("+", "model", _one(value(spec.model))))
    if spec.agent_id is not None:
        rows.append(("+", "agent_id", _one(value(spec.agent_id))))
    if spec.inputs:
        rows.append(("+", "inputs", _whole("+", [i.short for i in spec.inputs])))
    if spec.input_files:
        rows.append(("+", "input_files", _whole("+", list(spec.input_files))))
    if spec.requests_json is not None:
        count = spec.request_count or 0
        rows.append(("+", "requests", _one(f"({count} inline request{'s' if count != 1 else ''})")))
    if spec.prompts is not None:
        count = spec.prompts.rows.lines
        shown = f"{spec.prompts.short} ({count} request{'s' if count != 1 else ''})"
        rows.append(("+", "prompts", _one(value(shown))))
    if spec.metadata:
        rows.append(("+", "metadata", _whole("+", spec.metadata_dict)))
    rows.append(("+", "timeout_hours", _one(str(spec.timeout_hours))))
    return rows


def _diff_rows(diffs: Iterable[FieldDiff]) -> list[tuple[str, str, list[Line]]]:
    groups: dict[str, list[FieldDiff]] = {}
    for diff in diffs:
        groups.setdefault(diff.field, []).append(diff)
    rows: list[tuple[str, str, list[Line]]] = []
    for field, group in groups.items():
        if len(group) == 1 and len(group[0].parts) == 1:
            marker, attr, lines = _whole_field(field, group[0])
            if group[0].requests is not None:
                lines = [*lines, *request_lines(group[0].requests)]
            rows.append((marker, attr, lines))
        else:
            rows.append(("~", field, _nested(group)))
    return rows


def _whole_field(field: str, diff: FieldDiff) -> tuple[str, str, list[Line]]:
    if diff.added:
        return ("+", field, _whole("+", diff.new))
    if diff.removed:
        lines = _whole("-", diff.old)
        last = lines[-1]
        lines[-1] = Line(last.depth, last.marker, f"{last.text} -> null")
        return ("-", field, lines)
    return ("~", field, _one(f"{value(diff.old)} -> {value(diff.new)}"))


def request_lines(d: RequestsDiff, *, shown: int = REQUESTS_SHOWN) -> list[Line]:
    """The first ``shown`` changed requests, one line each, then what is left as counts."""
    lines = []
    listed = d.changes[:shown]
    for c in listed:
        label = value(c.label)
        match c.kind:
            case "added":
                lines.append(Line(2, "+", f"request {label}"))
            case "removed":
                lines.append(Line(2, "-", f"request {label}"))
            case "changed":
                fields = ", ".join(c.fields) or "body"
                lines.append(Line(2, "~", f"request {label}: {fields} changed"))
    rest = {
        "added": d.added - sum(c.kind == "added" for c in listed),
        "removed": d.removed - sum(c.kind == "removed" for c in listed),
        "changed": d.changed - sum(c.kind == "changed" for c in listed),
    }
    if sum(rest.values()):
        kinds = ", ".join(f"{n} {kind}" for kind, n in rest.items() if n)
        lines.append(Line(2, "", f"# ... and {sum(rest.values())} more ({kinds})"))
    if d.unknown:
        lines.append(
            Line(
                2,
                "",
                f"# {_requests(d.unknown)} kept {'its' if d.unknown == 1 else 'their'} "
                "custom_id; edits inside cannot be shown (the live job's tag lists ids only)",
            )
        )
    if d.unchanged:
        lines.append(Line(2, "", f"# ({_requests(d.unchanged)} unchanged)"))
    return lines


def line_counts(diff: FieldDiff) -> str:
    """`` # 12 lines added, 3 removed`` after a changed input file, when they are known."""
    if diff.lines is None:
        return ""
    added, removed = diff.lines
    return f" # {added:,} line{'s' if added != 1 else ''} added, {removed:,} removed"


def _requests(n: int) -> str:
    return f"{n:,} request{'s' if n != 1 else ''}"


def _whole(marker: str, v: Any) -> list[Line]:
    """A whole value; a list or map spans lines, each item marked."""
    if isinstance(v, list) and v:
        return [
            Line(1, "", "["),
            *(Line(2, marker, f"{value(item)},") for item in v),
            Line(1, "", "]"),
        ]
    if isinstance(v, dict) and v:
        keys = [value(k) for k in v]
        width = max(len(k) for k in keys)
        return [
            Line(1, "", "{"),
            *(
                Line(2, marker, f"{k.ljust(width)} = {value(item)}")
                for k, item in zip(keys, v.values(), strict=True)
            ),
            Line(1, "", "}"),
        ]
    return _one(value(v))


def _nested(group: Sequence[FieldDiff]) -> list[Line]:
    """Changes inside one map or list field, Terraform style."""
    is_list = isinstance(group[0].parts[1], int)
    items: list[Line] = []
    keys = [_item_key(d) for d in group]
    width = max(len(k) for k in keys)
    for diff, raw_key in zip(group, keys, strict=True):
        if is_list and len(diff.parts) == 2:
            if not diff.added:
                items.append(Line(2, "-", f"{value(diff.old)},"))
            if not diff.removed:
                items.append(Line(2, "+", f"{value(diff.new)},{line_counts(diff)}"))
            continue
        key = raw_key.ljust(width)
        if diff.added:
            items.append(Line(2, "+", f"{key} = {value(diff.new)}"))
        elif diff.removed:
            items.append(Line(2, "-", f"{key} = {value(diff.old)} -> null"))
        else:
            items.append(Line(2, "~", f"{key} = {value(diff.old)} -> {value(diff.new)}"))
    return [Line(1, "", "[" if is_list else "{"), *items, Line(1, "", "]" if is_list else "}")]


def _item_key(diff: FieldDiff) -> str:
    rest = diff.parts[1:]
    if len(rest) == 1 and isinstance(rest[0], str):
        return value(rest[0])
    return "".join(f"[{p}]" if isinstance(p, int) else f"[{value(p)}]" for p in rest)
