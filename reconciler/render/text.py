"""The text view of a plan, after Terraform's ``views/plan.go``: a legend of the symbols in
use, one block per change, the summary line, then what waits, warnings and errors.

Pure: ``render(plan, color=...) -> str``. Colour is a flag the shell decides (TTY, NO_COLOR).
Every piece of text is escaped for the terminal (:func:`reconciler.render.safe.terminal`)
before it is painted: names, ids, values and messages may come from the API, and only our
own colour codes may reach the terminal.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Final

from reconciler.plan.model import Change, GuardKind, NoteKind, Plan, Violation
from reconciler.render.common import (
    LEGEND,
    Line,
    change_block,
    headline,
    note_block,
    note_headline,
    targeting_line,
)
from reconciler.render.cost import change_line, cost_notes, total_line
from reconciler.render.safe import terminal

WIDTH: Final = 100  # wrap prose (warnings, errors) at this many columns

_RESET: Final = "\x1b[0m"
_BOLD: Final = "\x1b[1m"
_RED: Final = "\x1b[31m"
_GREEN: Final = "\x1b[32m"
_YELLOW: Final = "\x1b[33m"
_MARKER_COLOURS: Final = {"+": _GREEN, "-": _RED, "x": _YELLOW, "~": _YELLOW}

_GUARD_TITLES: Final = {
    GuardKind.PREVENT_DESTROY: "Job cannot be cancelled or deleted",
    GuardKind.MAX_DESTROY: "Too many jobs would be cancelled or deleted",
    GuardKind.EMPTY_DESIRED: "Plan would remove every managed job",
    GuardKind.MAX_COST: "Plan is not within its cost budget (safety.max_cost)",
}


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def paint(self, text: str, *codes: str) -> str:
        if not self.color or not text:
            return text
        return "".join(codes) + text + _RESET

    def marker(self, marker: str) -> str:
        if marker == "-/+":
            return self.paint("-", _RED) + "/" + self.paint("+", _GREEN)
        return self.paint(marker, _MARKER_COLOURS.get(marker, ""))


def format_line(line: Line, style: _Style | None = None) -> str:
    """Terraform's indentation: markers right-aligned in a 3-column gutter per depth."""
    marker = line.marker or " "
    shown = style.marker(line.marker) if style is not None and line.marker else marker
    indent = " " * (4 * line.depth + 3 - len(marker))
    return f"{indent}{shown} {terminal(line.text)}".rstrip()


def format_block(lines: Iterable[Line], style: _Style | None = None) -> list[str]:
    return [format_line(line, style) for line in lines]


def render(plan: Plan, *, color: bool) -> str:
    style = _Style(color)
    out: list[str] = []
    targeted = targeting_line(plan.targeting)
    if targeted is not None:
        out.extend([style.paint(terminal(targeted), _BOLD), ""])
    if plan.has_changes:
        out.append("Job actions are indicated with the following symbols:")
        out.extend(
            f"{' ' * (3 - len(a.symbol))}{style.marker(a.symbol)} {LEGEND[a]}"
            for a in plan.actions_in_use
        )
        out.append("")
        out.append(
            "Reconciler will perform the following actions in workspace "
            f"{terminal(plan.workspace)}:"
        )
        for change in plan.changes:
            out.append("")
            out.append(style.paint(f"  # {terminal(headline(change))}", _BOLD))
            out.extend(format_block(change_block(change, cost_line(plan, change)), style))
        out.append("")
    out.append(style.paint(plan.summary.line(), _BOLD))
    if plan.cost is not None and plan.has_changes:
        out.append(terminal(total_line(plan.cost)))

    waiting = [n for n in plan.notes if n.kind is NoteKind.WAITING]
    if waiting:
        out.append("")
        out.append("Waiting for running jobs to finish (on_change: wait):")
        for note in waiting:
            out.append("")
            out.append(style.paint(f"  # {terminal(note_headline(note))}", _BOLD))
            out.extend(format_block(note_block(note), style))

    for note in plan.notes:
        if note.kind is NoteKind.EXHAUSTED:
            out.append("")
            out.append(
                style.paint("Warning: ", _BOLD, _YELLOW)
                + style.paint(terminal(note_headline(note)), _BOLD)
            )
            out.append("")
            out.extend(_prose(note.message))

    for warning in cost_notes(plan):
        out.append("")
        out.append(style.paint("Warning: ", _BOLD, _YELLOW) + style.paint("Cost estimate", _BOLD))
        out.append("")
        out.extend(_prose(warning))

    for violation in plan.violations:
        out.append("")
        out.extend(_error(violation, style))
    return "\n".join(out) + "\n"


def cost_line(plan: Plan, change: Change) -> str | None:
    """The ``cost`` line of a create or replace, when the plan has an estimate."""
    found = plan.change_cost(change)
    if found is None or plan.cost is None:
        return None
    return change_line(found, plan.cost.default_output_tokens)


def _error(violation: Violation, style: _Style) -> list[str]:
    title = _GUARD_TITLES[violation.guard]
    return [
        style.paint("Error: ", _BOLD, _RED) + style.paint(title, _BOLD),
        "",
        *_prose(violation.message),
    ]


def _prose(text: str) -> list[str]:
    return textwrap.wrap(
        terminal(text),
        WIDTH,
        initial_indent="  ",
        subsequent_indent="  ",
        break_on_hyphens=False,
        break_long_words=False,
    )
