"""Money as :class:`~decimal.Decimal` US dollars: exact sums, rounded only for display.

Estimates add up many tiny amounts (a request of 300 tokens at $0.10 per million costs
$0.00003); binary floats would drift and print ``$12.399999``. Every amount in the cost
package is a ``Decimal`` computed with a context wide enough that no sum of a plan ever
rounds; only :func:`format_usd` rounds, and only what it prints.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Final

CURRENCY: Final = "USD"
# 40 significant digits: a trillion tokens at a millionth of a cent still sums exactly.
CONTEXT: Final = Context(prec=40)
CENT: Final = Decimal("0.01")
MILLION: Final = Decimal(1_000_000)
THOUSAND: Final = Decimal(1_000)
ZERO: Final = Decimal(0)
# Amounts users type (--allow-cost, safety.max_cost, prices:) are bounded so that a typo
# such as 1e400 is an error rather than a number no plan can reach.
MAX_AMOUNT: Final = Decimal(10) ** 12


def to_decimal(value: object) -> Decimal:
    """A user-written number as a Decimal, exactly as written.

    YAML gives floats; ``Decimal(0.1)`` would be 0.1000000000000000055…, so a float goes
    through its shortest repr (``'0.1'``), which is what the user typed. Raises ValueError
    for anything that is not a finite number (booleans included)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError("must be a number")
    try:
        result = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        raise ValueError("must be a number") from None
    if not result.is_finite():
        raise ValueError("must be a finite number")
    return result


def parse_usd(text: str) -> Decimal:
    """An amount of dollars typed on the command line (``--allow-cost=12.40``).

    Accepts ``12``, ``12.40``, ``$12.40``, ``12.40 USD``; refuses negative amounts, NaN,
    infinity, exponents and anything else with a ValueError whose message says why (for
    the CLI's usage error)."""
    raw = text.strip()
    cleaned = raw.removeprefix("$").strip()
    if cleaned.upper().endswith(CURRENCY):
        cleaned = cleaned[: -len(CURRENCY)].strip()
    if not cleaned or not all(c.isdigit() or c == "." for c in cleaned) or cleaned.count(".") > 1:
        shown = raw if len(raw) <= 40 else raw[:37] + "..."
        raise ValueError(f"{shown!r} is not an amount in dollars (write it like 12.40)")
    if cleaned == ".":
        raise ValueError(f"{raw!r} is not an amount in dollars (write it like 12.40)")
    amount = Decimal(cleaned)
    if amount > MAX_AMOUNT:
        raise ValueError(f"{raw!r} is more than {format_usd(MAX_AMOUNT)}")
    return amount


def per_unit(quantity: int, price: Decimal, unit: Decimal, discount: Decimal) -> Decimal:
    """``quantity`` units priced ``price`` per ``unit`` units, less ``discount`` (0.5: half)."""
    return CONTEXT.multiply(
        CONTEXT.divide(CONTEXT.multiply(Decimal(quantity), price), unit), 1 - discount
    )


def total(amounts: list[Decimal]) -> Decimal:
    result = ZERO
    for amount in amounts:
        result = CONTEXT.add(result, amount)
    return result


def ceil_cents(amount: Decimal) -> Decimal:
    """The amount rounded up to a whole cent: the least ``--allow-cost`` that covers it."""
    return amount.quantize(CENT, rounding=ROUND_CEILING, context=CONTEXT)


def format_usd(amount: Decimal) -> str:
    """``$12.40``; ``$1,234.50``; amounts below a cent show their first two significant
    digits (``$0.0042``) rather than a misleading ``$0.00``; zero is ``$0.00``."""
    if amount < 0:
        return "-" + format_usd(-amount)
    if amount == 0 or amount >= CENT:
        return f"${amount.quantize(CENT, rounding=ROUND_HALF_EVEN, context=CONTEXT):,}"
    digits = -amount.adjusted() + 1  # 0.0042 -> 4 decimals
    quantum = Decimal(1).scaleb(-digits)
    return f"${amount.quantize(quantum, rounding=ROUND_HALF_EVEN, context=CONTEXT)}"
