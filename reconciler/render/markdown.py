"""The markdown view of a plan, for pull-request comments.

A summary table, a banner when live jobs would be cancelled or deleted, errors and
warnings, then one collapsible ``<details>`` section per job holding its blocks in a
``diff`` fence (markers moved to column 0, so GitHub colours them). GitHub refuses comments
over 65,536 characters: when the whole plan does not fit, job sections are dropped from
the end and a note says how many, and where the full plan is.

With ``marker=True`` the comment starts with a hidden ``<!-- reconciler-plan: WORKSPACE -->``
line (see :func:`comment_marker`), by which CI finds its own comment and updates it in
place on later pushes; it counts towards the limit like everything else.

Names, ids, values and messages may come from the API (anyone in the organisation can name
a job): every one is escaped with :mod:`reconciler.render.safe` where it lands, as inline
markdown in the summaries, bullets and heading (no tag closed, no comment, link, image or
mention started, no line broken), and as one escaped line inside the diff fences.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from reconciler.cost.money import format_usd, total
from reconciler.plan.model import ACTION_ORDER, Action, Change, Note, NoteKind, Plan
from reconciler.render.common import (
    LEGEND,
    Line,
    change_block,
    headline,
    note_block,
    note_headline,
    targeting_line,
)
from reconciler.render.cost import APPROX, cost_notes, method_word, total_line
from reconciler.render.safe import code, markdown, terminal
from reconciler.render.text import cost_line, format_line

MAX_CHARS: Final = 65_536
# Room kept for the note about what was left out (and the closing newline).
_RESERVE: Final = 400

# GitHub's diff highlighting knows "+" and "-"; "!" stands for "changes" (as tfcmt does).
_DIFF_MARKERS: Final = {"+": "+", "-": "-", "~": "!", "x": "!", "-/+": "!"}
_BACKTICKS: Final = re.compile(r"`{3,}")


@dataclass(frozen=True)
class _Section:
    """A piece of the comment, rendered only if it still fits (a plan may have 100k jobs)."""

    text: Callable[[], str]
    counts_as: str  # "job" or "message" when left out; "" for headings and spacing


def comment_marker(workspace: str) -> str:
    """The hidden first line of a PR comment, one per workspace; never closes early."""
    return f"<!-- reconciler-plan: {html.escape(terminal(workspace))} -->"


def render(plan: Plan, *, marker: bool = False) -> str:
    head = _head(plan)
    if marker:
        head = comment_marker(plan.workspace) + "\n" + head
    sections = [*_messages(plan), *_job_sections(plan)]
    out = [head]
    size = len(head)
    for i, section in enumerate(sections):
        text = section.text()
        # The last section may use the reserve: no note will follow it.
        room = MAX_CHARS - 1 - (0 if i == len(sections) - 1 else _RESERVE)
        if size + len(text) > room:
            out.append(_left_out_note(sections[i:]))
            break
        out.append(text)
        size += len(text)
    text = "".join(out).rstrip("\n") + "\n"
    assert len(text) <= MAX_CHARS
    return text


def _head(plan: Plan) -> str:
    parts = [f"### Reconciler plan for workspace {code(plan.workspace)}\n\n"]
    targeted = targeting_line(plan.targeting)
    if targeted is not None:
        parts.append(f"> [!NOTE]\n> {markdown(targeted)}\n\n")
    if plan.plan_id is not None:
        commit = f" from commit {code(plan.commit)}" if plan.commit else ""
        parts.append(f"<sub>Plan {code(plan.plan_id)}{commit}</sub>\n\n")
    if not plan.has_changes:
        parts.append(f"{plan.summary.line()}\n\n")
        return "".join(parts)
    destroyed = len(plan.destroyed_job_ids)
    if destroyed:
        summary = plan.summary
        how = ", ".join(
            f"{n} {what}"
            for n, what in (
                (summary.replace, "replaced"),
                (summary.cancel, "cancelled"),
                (summary.delete, "deleted"),
            )
            if n
        )
        noun = "live job" if destroyed == 1 else "live jobs"
        parts.append(
            f"> [!WARNING]\n> This plan cancels or deletes **{destroyed} {noun}** ({how}). "
            "Check that this is intended before merging.\n\n"
        )
    counts = {a: sum(1 for c in plan.changes if c.action is a) for a in ACTION_ORDER}
    if plan.cost is None:
        parts.append("| Action | Jobs |\n| :-- | --: |\n")
        parts.extend(f"| `{a.symbol}` {LEGEND[a]} | {counts[a]} |\n" for a in ACTION_ORDER)
        parts.append(f"\n**{plan.summary.line()}**\n\n")
        return "".join(parts)
    parts.append("| Action | Jobs | Estimated cost |\n| :-- | --: | --: |\n")
    parts.extend(
        f"| `{a.symbol}` {LEGEND[a]} | {counts[a]} | {_action_cost(plan, a)} |\n"
        for a in ACTION_ORDER
    )
    total = f"{method_word(plan.cost)} {format_usd(plan.cost.total)}"
    parts.append(f"| **Total** | {plan.summary.total} | **{markdown(total)}** |\n")
    parts.append(f"\n**{plan.summary.line()}**<br>\n{markdown(total_line(plan.cost))}\n\n")
    return "".join(parts)


def _action_cost(plan: Plan, action: Action) -> str:
    """The summary table's cost cell of one action: the sum of its changes' estimates."""
    costs = [plan.change_cost(c) for c in plan.changes if c.action is action]
    found = [c for c in costs if c is not None]
    if not found:
        return "–"
    priced = [c.cost.total for c in found if c.cost.total is not None and c.unread is None]
    parts = [format_usd(total(priced))] if priced else []
    if parts and any(c.estimate.method == "heuristic" for c in found):
        parts[0] = f"{APPROX} {parts[0]}"
    unpriced = sum(1 for c in found if not c.cost.priced)
    unknown = sum(1 for c in found if c.cost.priced and c.unread is not None)
    parts += [f"{n} {what}" for n, what in ((unpriced, "unpriced"), (unknown, "unknown")) if n]
    return markdown(" + ".join(parts))


def _messages(plan: Plan) -> list[_Section]:
    sections: list[_Section] = []
    if plan.violations:
        heading = "> [!CAUTION]\n> **Apply is blocked by a safety guard** (exit code 3):\n"
        sections.append(_Section(lambda: heading, ""))
        sections.extend(_Section(_bullet(markdown(v.message)), "message") for v in plan.violations)
        sections.append(_Section(lambda: "\n", ""))
    exhausted = [n for n in plan.notes if n.kind is NoteKind.EXHAUSTED]
    if exhausted:
        sections.append(_Section(lambda: "> [!NOTE]\n> Jobs that will not be retried:\n", ""))
        sections.extend(
            _Section(_bullet(f"**{markdown(n.name)}**: {markdown(n.message)}"), "message")
            for n in exhausted
        )
        sections.append(_Section(lambda: "\n", ""))
    notes = cost_notes(plan)
    if notes:
        sections.append(_Section(lambda: "> [!NOTE]\n> About the cost estimate:\n", ""))
        sections.extend(_Section(_bullet(markdown(n)), "message") for n in notes)
        sections.append(_Section(lambda: "\n", ""))
    return sections


def _bullet(text: str) -> Callable[[], str]:
    return lambda: f"> - {text}\n"


def _job_sections(plan: Plan) -> list[_Section]:
    by_name: dict[str, list[Change]] = {}
    for change in plan.changes:
        by_name.setdefault(change.name, []).append(change)
    sections = [
        _Section(functools.partial(_changes_section, plan, changes), "job")
        for changes in by_name.values()
    ]
    sections.extend(
        _Section(functools.partial(_waiting_section, n), "job")
        for n in plan.notes
        if n.kind is NoteKind.WAITING
    )
    return sections


def _changes_section(plan: Plan, changes: Sequence[Change]) -> str:
    symbols = " ".join(dict.fromkeys(c.action.symbol for c in changes))
    lines: list[str] = []
    for change in changes:
        if lines:
            lines.append("")
        lines.append(f"# {terminal(headline(change))}")
        lines.extend(_diff_lines(change_block(change, cost_line(plan, change))))
    title = headline(changes[0])
    if len(changes) > 1:
        title += f" (and {len(changes) - 1} more change{'s' if len(changes) > 2 else ''})"
    return _details(f"<code>{markdown(symbols)}</code> {markdown(title)}", lines)


def _waiting_section(note: Note) -> str:
    lines = [f"# {terminal(note_headline(note))}", *_diff_lines(note_block(note))]
    return _details(f"⏳ {markdown(note_headline(note))}", lines)


def _details(summary: str, lines: Sequence[str]) -> str:
    body = "\n".join(lines)
    longest = max((len(m.group(0)) for m in _BACKTICKS.finditer(body)), default=2)
    fence = "`" * max(3, longest + 1)
    return (
        f"<details><summary>{summary}</summary>\n\n{fence}diff\n{body}\n{fence}\n\n</details>\n\n"
    )


def _diff_lines(block: Sequence[Line]) -> list[str]:
    """Terraform's layout with each marker moved to column 0 (as tfcmt shows plans)."""
    out = []
    for line in block:
        plain = format_line(Line(line.depth, " " * len(line.marker), line.text))
        marker = _DIFF_MARKERS.get(line.marker, " ")
        out.append(f"{marker}{plain[1:]}" if plain.startswith(" ") else f"{marker} {plain}")
    return out


def _left_out_note(left_out: Sequence[_Section]) -> str:
    jobs = sum(1 for s in left_out if s.counts_as == "job")
    messages = sum(1 for s in left_out if s.counts_as == "message")
    what = [f"{jobs} job{'s' if jobs != 1 else ''}"] if jobs else []
    if messages or not what:
        what.append(f"{messages} message{'s' if messages != 1 else ''}")
    return (
        f"\n> [!IMPORTANT]\n> **{' and '.join(what)} not shown**: this comment is limited to "
        f"{MAX_CHARS:,} characters. See the CI log, or run `reconciler plan --format text`, "
        "for the full plan.\n"
    )
