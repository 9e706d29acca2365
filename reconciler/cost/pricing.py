"""Tokens -> money: an :class:`~reconciler.cost.estimate.Estimate` (or measured usage)
priced with a :class:`~reconciler.cost.prices.PriceTable`, batch discount applied.

A quantity is priced only by its own price: input tokens by ``input``, output tokens by
``output``, OCR pages by ``per_1000_pages`` (annotated ones by
``per_1000_annotated_pages``), audio by ``per_minute``. A model with no entry at all, or
whose entry lacks a price a quantity needs (an embedding model asked for output tokens),
is *unpriced*: its cost is None, never a misleading $0.00, and the missing price is named.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from reconciler.cost.estimate import Estimate
from reconciler.cost.money import CONTEXT, CURRENCY, MILLION, THOUSAND, ZERO, per_unit, total
from reconciler.cost.prices import ModelPrice, PriceTable

_SIXTY: Final = Decimal(60)


@dataclass(frozen=True)
class Cost:
    """What an estimate (or actual usage) costs, in USD after the batch discount.

    Amounts are None when ``priced`` is False. ``unknown`` requests are not in ``total``
    (their quantities are not known before they run)."""

    model: str | None  # as the job names it; None for an agent job (model not known here)
    priced: bool
    input: Decimal | None
    output: Decimal | None
    pages: Decimal | None  # OCR pages, annotated or not
    audio: Decimal | None  # transcription minutes
    total: Decimal | None
    price_date: str
    batch_discount: Decimal
    overridden: bool = False  # a price of prices: in reconciler.yaml was used
    missing: tuple[str, ...] = ()  # price fields a quantity needed but the model lacks
    unknown: int = 0
    currency: str = CURRENCY

    @property
    def status(self) -> str:
        return "priced" if self.priced else "unpriced"


@dataclass(frozen=True)
class Quantities:
    """What is priced: tokens, OCR pages, seconds of audio."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    pages: int = 0
    annotated_pages: int = 0
    audio_seconds: Decimal = ZERO
    unknown: int = 0

    @staticmethod
    def of(estimate: Estimate) -> Quantities:
        return Quantities(
            requests=estimate.requests,
            input_tokens=estimate.input_tokens,
            output_tokens=estimate.output_tokens,
            pages=estimate.pages,
            annotated_pages=estimate.annotated_pages,
            unknown=estimate.unknown,
        )


def price(quantities: Quantities, model: str | None, table: PriceTable) -> Cost:
    """The cost of ``quantities`` for ``model`` (an id as the job names it, alias or not)."""
    entry = table.lookup(model) if model is not None else None
    needs = {
        "input": quantities.input_tokens > 0,
        "output": quantities.output_tokens > 0,
        "per_1000_pages": quantities.pages > 0,
        "per_1000_annotated_pages": quantities.annotated_pages > 0,
        "per_minute": quantities.audio_seconds > 0,
    }
    found = entry or ModelPrice()
    missing = tuple(k for k, needed in needs.items() if needed and getattr(found, k) is None)
    unpriced = bool(missing) or (entry is None and quantities.requests > 0)
    common: dict[str, Any] = {
        "model": model,
        "price_date": table.date,
        "batch_discount": table.batch_discount,
        "overridden": found.overridden,
        "missing": missing,
        "unknown": quantities.unknown,
    }
    if unpriced:
        return Cost(
            priced=False, input=None, output=None, pages=None, audio=None, total=None, **common
        )
    discount = table.batch_discount

    def part(quantity: int, unit_price: Decimal | None, unit: Decimal) -> Decimal:
        return (
            ZERO
            if not quantity or unit_price is None
            else per_unit(quantity, unit_price, unit, discount)
        )

    input_usd = part(quantities.input_tokens, found.input, MILLION)
    output_usd = part(quantities.output_tokens, found.output, MILLION)
    pages_usd = CONTEXT.add(
        part(quantities.pages, found.per_1000_pages, THOUSAND),
        part(quantities.annotated_pages, found.per_1000_annotated_pages, THOUSAND),
    )
    audio_usd = ZERO
    if quantities.audio_seconds and found.per_minute is not None:
        # Multiply before dividing: 90.5 s x $0.006 / 60 is exact, 90.5 / 60 is not.
        cents = CONTEXT.multiply(quantities.audio_seconds, found.per_minute)
        audio_usd = CONTEXT.multiply(CONTEXT.divide(cents, _SIXTY), 1 - discount)
    return Cost(
        priced=True,
        input=input_usd,
        output=output_usd,
        pages=pages_usd,
        audio=audio_usd,
        total=total([input_usd, output_usd, pages_usd, audio_usd]),
        **common,
    )


def cost_of(estimate: Estimate, model: str | None, table: PriceTable) -> Cost:
    """The cost of an estimate for ``model``."""
    return price(Quantities.of(estimate), model, table)
