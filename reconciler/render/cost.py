"""How every view words a plan's cost estimate: one line per create or replace, the
plan's total under the summary, and what the estimate leaves out.

Pure: ``PlanCost`` in, plain text out (model names and agent ids may come from a saved plan
file: each view escapes the text for its medium, as for every other line).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from reconciler.cost.budget import ChangeCost, PlanCost
from reconciler.cost.estimate import IMAGE_TOKENS, Estimate
from reconciler.cost.money import format_usd
from reconciler.plan.model import Plan

APPROX: Final = "≈"


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun if count == 1 else noun + 's'}"


def quantities(e: Estimate, default_output_tokens: int, model: str | None = None) -> str:
    """``2 requests: 14 input + ≤ 20 output tokens, MODEL`` (then pages, unbounded requests,
    images, requests of unknown cost, each after a ``;``)."""
    counted: list[str] = []
    if e.input_tokens or e.output_tokens or not e.total_pages:
        tokens = [f"{e.input_tokens:,} input"]
        if e.output_tokens:
            # max_tokens bounds the output; a default for unbounded requests does not.
            tokens.append(f"{'' if e.unbounded else '≤ '}{e.output_tokens:,} output")
        counted.append(" + ".join(tokens) + " tokens")
    if e.pages:
        counted.append(_n(e.pages, "page"))
    if e.annotated_pages:
        counted.append(_n(e.annotated_pages, "annotated page"))
    head = f"{_n(e.requests, 'request')}: {' + '.join(counted)}"
    if model is not None:
        head += f", {model}"
    extras: list[str] = []
    if e.unbounded:
        extras.append(
            f"{_n(e.unbounded, 'request')} without max_tokens (output unbounded), counted at"
            f" {default_output_tokens:,} output tokens each"
        )
    if e.images:
        extras.append(f"{_n(e.images, 'image')} counted at {IMAGE_TOKENS:,} tokens each")
    if e.unknown:
        extras.append(f"{_n(e.unknown, 'request')} of unknown cost not included")
    return "; ".join([head, *extras])


def change_line(c: ChangeCost, default_output_tokens: int) -> str:
    """The ``cost`` line of one create or replace."""
    if c.unread is not None:
        return f"unknown: {c.unread}"
    if c.estimate.requests and c.estimate.unknown == c.estimate.requests:
        return (
            f"unknown: {_n(c.estimate.requests, 'request')} whose cost is not known before"
            " they run (OCR pages not given, audio)"
        )
    if not c.cost.priced or c.cost.total is None:
        shown = quantities(c.estimate, default_output_tokens)
        return f"unpriced: {_unpriced(c)} ({shown})"
    approx = f"{APPROX} " if c.estimate.method == "heuristic" else ""
    model = c.model if c.model is not None else c.priced_as
    if c.cost.overridden:
        model += " priced by prices:"
    shown = quantities(c.estimate, default_output_tokens, model)
    return f"{approx}{format_usd(c.cost.total)} ({shown})"


def _unpriced(c: ChangeCost) -> str:
    if c.model is None:
        return f"{c.priced_as} (an agent's model and price are not known here)"
    if c.cost.missing:
        return f"{c.model} has no {' or '.join(c.cost.missing)} price"
    return f"{c.model} has no known price"


def method_word(cost: PlanCost) -> str:
    return APPROX if cost.method == "heuristic" else "exact"


def total_line(cost: PlanCost) -> str:
    """``Estimated cost of this plan: $12.40 (≈, batch prices of 2026-08-21)``."""
    head = f"Estimated cost of this plan: {format_usd(cost.total)}"
    details = [f"{method_word(cost)}, batch prices of {cost.price_date}"]
    if cost.overridden:
        details.append(f"prices: for {', '.join(cost.overridden)}")
    text = f"{head} ({'; '.join(details)})"
    left_out = not_included(cost)
    if left_out:
        text += f"; not included: {', '.join(left_out)}"
    return text


def not_included(cost: PlanCost) -> list[str]:
    """What the total leaves out, in words (empty when it is the whole cost)."""
    out = [f"unpriced {name}" for name in cost.unpriced]
    if cost.estimate.unknown:
        out.append(f"{_n(cost.estimate.unknown, 'request')} of unknown cost")
    unread = cost.unread
    if unread:
        out.append(f"{_n(len(unread), 'job')} on input_files (not read)")
    return out


def cost_notes(plan: Plan) -> Sequence[str]:
    """Warnings about the estimate: an amount above safety.max_cost that --allow-cost
    accepted. (What the total leaves out is said on its own line, ``not included: …``.)"""
    if plan.cost is None:
        return ()
    allowed = plan.cost.check(plan.budget.max_cost, plan.budget.allow_cost).allowed
    return () if allowed is None else (allowed,)
