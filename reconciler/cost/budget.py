"""A plan's cost and the budget guard: plain data in, plain data out.

The shell hands :func:`estimate_plan_cost` one :class:`CostItem` per change that starts
work (create, replace, retry), each with its model, endpoint and either its request
lines or an estimate computed earlier; it gets back a :class:`PlanCost`: per-change
estimates and costs, the total, the currency, the table's date and the method (``exact``
only when every change was counted exactly). :func:`check_budget` then decides whether
``safety.max_cost`` blocks the plan, given ``--allow-cost``. :meth:`PlanCost.to_json` and
:func:`plan_cost_from_json` carry the result through JSON output and saved plans; the
latter treats its input as untrusted (a plan file may be hand-edited).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final

from reconciler.cost.estimate import (
    DEFAULT_OUTPUT_TOKENS,
    Estimate,
    Method,
    TokenCounter,
    estimate_lines,
)
from reconciler.cost.money import CURRENCY, ceil_cents, format_usd, to_decimal, total
from reconciler.cost.prices import PriceTable
from reconciler.cost.pricing import Cost, Quantities, cost_of, price
from reconciler.cost.tokenizers import counter_for

SCHEMA_VERSION: Final = 1


@dataclass(frozen=True)
class CostItem:
    """One change to estimate. Give ``lines`` (JSONL request lines, read once) or a
    precomputed ``estimate`` (e.g. the sum of a job's shards, or what a saved plan holds)."""

    key: str  # how the plan names the change: "cheese-eval", "cheese-eval[2]", …
    model: str | None  # as the job names it; None for agent jobs
    endpoint: str
    lines: Iterable[bytes] | None = field(default=None, compare=False)
    estimate: Estimate | None = None
    agent_id: str | None = None
    counter: str | None = None  # how a given ``estimate`` was counted (else "given")
    # Why the change's requests cannot be read (input_files uploaded by other means): its
    # cost is unknown, stated in the plan; give neither ``lines`` nor ``estimate`` then.
    unread: str | None = None


@dataclass(frozen=True)
class ChangeCost:
    key: str
    model: str | None
    endpoint: str
    estimate: Estimate
    cost: Cost
    counter: str  # the tokenizer file, or "heuristic (tekken)"
    agent_id: str | None = None
    unread: str | None = None  # why the requests were not read: the cost is unknown

    @property
    def priced_as(self) -> str:
        """The name an unpriced change is listed under."""
        if self.model is not None:
            return self.model
        return f"agent {self.agent_id}" if self.agent_id else "agent"


@dataclass(frozen=True)
class PlanCost:
    changes: tuple[ChangeCost, ...]
    total: Decimal  # of the priced changes (a lower bound when not complete)
    price_date: str
    price_source: str
    batch_discount: Decimal
    method: Method  # "exact" only when every change is
    unpriced: tuple[str, ...]  # models without a price, sorted, each once
    overridden: tuple[str, ...]  # models priced from prices: in reconciler.yaml
    estimate: Estimate  # every change together
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS
    currency: str = CURRENCY

    @property
    def unread(self) -> tuple[str, ...]:
        """Keys of the changes whose requests were not read (their cost is unknown)."""
        return tuple(c.key for c in self.changes if c.unread is not None)

    @property
    def complete(self) -> bool:
        """Whether ``total`` is the whole cost: no unpriced model, no unknown request, no
        change whose requests could not be read."""
        return not self.unpriced and self.estimate.unknown == 0 and not self.unread

    def check(self, max_cost: Decimal | None, allow_cost: Decimal | None) -> BudgetCheck:
        """:func:`check_budget` of this plan's cost."""
        return check_budget(
            self.total,
            max_cost,
            allow_cost,
            self.unpriced,
            unknown=self.estimate.unknown,
            unread=self.unread,
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data (amounts as decimal strings: JSON numbers are floats)."""
        return {
            "version": SCHEMA_VERSION,
            "currency": self.currency,
            "total": plain(self.total),
            "complete": self.complete,
            "method": self.method,
            "price_date": self.price_date,
            "price_source": self.price_source,
            "batch_discount": plain(self.batch_discount),
            "default_output_tokens": self.default_output_tokens,
            "unpriced": list(self.unpriced),
            "overridden": list(self.overridden),
            "estimate": _estimate_json(self.estimate),
            "changes": [
                {
                    "key": c.key,
                    "model": c.model,
                    "agent_id": c.agent_id,
                    "endpoint": c.endpoint,
                    "counter": c.counter,
                    "estimate": _estimate_json(c.estimate),
                    "cost": _cost_json(c.cost),
                    "unread": c.unread,
                }
                for c in self.changes
            ],
        }


def _estimate_json(e: Estimate) -> dict[str, Any]:
    return {
        "requests": e.requests,
        "input_tokens": e.input_tokens,
        "output_tokens": e.output_tokens,
        "unbounded": e.unbounded,
        "unknown": e.unknown,
        "method": e.method,
        "pages": e.pages,
        "annotated_pages": e.annotated_pages,
        "images": e.images,
    }


def plain(amount: Decimal) -> str:
    """An amount as a decimal string without an exponent (``0.00000070``, not ``7.0E-7``):
    what JSON readers and people expect."""
    return f"{amount:f}"


def estimate_to_json(e: Estimate) -> dict[str, Any]:
    """An :class:`Estimate` as plain JSON data (read back by :func:`estimate_from_json`)."""
    return _estimate_json(e)


def estimate_from_json(data: Any) -> Estimate:
    """An estimate saved by :func:`estimate_to_json`, checked field by field."""
    return _estimate_from(data, "estimate")


def _cost_json(c: Cost) -> dict[str, Any]:
    def amount(v: Decimal | None) -> str | None:
        return None if v is None else plain(v)

    return {
        "status": c.status,
        "input": amount(c.input),
        "output": amount(c.output),
        "pages": amount(c.pages),
        "audio": amount(c.audio),
        "total": amount(c.total),
        "overridden": c.overridden,
        "missing": list(c.missing),
    }


def estimate_plan_cost(
    items: Iterable[CostItem],
    table: PriceTable,
    *,
    exact: bool = True,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
    counter: Callable[[str | None], TokenCounter] | None = None,
) -> PlanCost:
    """Estimate and price every change; the total and what it does not cover.

    ``counter`` picks the token counter for a (dated) model id; by default the model's own
    tokenizer where mistral-common ships one and ``exact``, else the heuristic."""
    pick = counter or (lambda model: counter_for(model, exact=exact))
    changes: list[ChangeCost] = []
    for item in items:
        model_id = table.resolve(item.model) if item.model is not None else None
        chosen = pick(model_id)
        if item.unread is not None:
            changes.append(_unread(item, table))
            continue
        if item.estimate is not None:
            estimate = item.estimate
            name = item.counter or "given"
        elif item.lines is not None:
            estimate = estimate_lines(
                item.lines, item.endpoint, chosen, default_output_tokens=default_output_tokens
            )
            name = chosen.name
        else:
            raise ValueError(f"{item.key}: give the change's request lines or its estimate")
        changes.append(
            ChangeCost(
                key=item.key,
                model=item.model,
                endpoint=item.endpoint,
                estimate=estimate,
                cost=cost_of(estimate, item.model, table),
                counter=name,
                agent_id=item.agent_id,
            )
        )
    return _plan_cost(
        tuple(changes),
        price_date=table.date,
        price_source=table.source,
        batch_discount=table.batch_discount,
        default_output_tokens=default_output_tokens,
    )


def _unread(item: CostItem, table: PriceTable) -> ChangeCost:
    """A change whose requests are not known here: no quantities, but still unpriced when
    its model has no price (one request of unknown size makes the lookup count)."""
    return ChangeCost(
        key=item.key,
        model=item.model,
        endpoint=item.endpoint,
        estimate=Estimate(),
        cost=price(Quantities(requests=1), item.model, table),
        counter="not read",
        agent_id=item.agent_id,
        unread=item.unread,
    )


def _plan_cost(
    changes: tuple[ChangeCost, ...],
    *,
    price_date: str,
    price_source: str,
    batch_discount: Decimal,
    default_output_tokens: int,
) -> PlanCost:
    everything = Estimate.total(c.estimate for c in changes)
    return PlanCost(
        changes=changes,
        total=total([c.cost.total for c in changes if c.cost.total is not None]),
        price_date=price_date,
        price_source=price_source,
        batch_discount=batch_discount,
        method=everything.method,
        unpriced=tuple(sorted({c.priced_as for c in changes if not c.cost.priced})),
        overridden=tuple(
            sorted({c.model for c in changes if c.cost.overridden and c.model is not None})
        ),
        estimate=everything,
        default_output_tokens=default_output_tokens,
    )


# -- the guard -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetCheck:
    """Whether ``safety.max_cost`` blocks the plan (exit 3), and what to say."""

    blocked: bool
    message: str | None = None  # why it is blocked and the way out; None when not blocked
    notes: tuple[str, ...] = ()  # said in any case (what the estimate leaves out)
    allowed: str | None = None  # the note that --allow-cost accepted an amount above the limit


def check_budget(
    total_usd: Decimal,
    max_cost: Decimal | None,
    allow_cost: Decimal | None,
    unpriced: Sequence[str],
    *,
    unknown: int = 0,
    unread: Sequence[str] = (),
) -> BudgetCheck:
    """The budget guard, like ``--allow-destroy`` for money.

    - no ``safety.max_cost``: never blocked;
    - a model without a price: blocked, naming it (no amount can cover an unknown cost;
      ``prices:`` can give it one);
    - the total above ``max_cost``: blocked unless ``--allow-cost=AMOUNT`` covers it
      (total <= AMOUNT); the message names the least AMOUNT that does.

    Requests whose cost is unknown before they run (OCR pages not given, audio) and
    changes whose requests are not read (``unread``: jobs on files uploaded by other
    means) do not block: they are stated in ``notes`` and in the plan's cost lines."""
    notes: list[str] = []
    if unread:
        one = len(unread) == 1
        notes.append(
            f"the cost of {len(unread):,} {'job' if one else 'jobs'} is unknown"
            f" ({', '.join(unread)}): {'its' if one else 'their'} requests are in files"
            " uploaded by other means (input_files), which planning does not read; not in"
            " the estimate"
        )
    if unknown:
        noun = "request" if unknown == 1 else "requests"
        notes.append(
            f"{unknown:,} {noun} of unknown cost (OCR pages not given, audio) are not in"
            " the estimate"
        )
    if max_cost is None:
        return BudgetCheck(False, None, tuple(notes))
    limit = format_usd(max_cost)
    if unpriced:
        names = ", ".join(unpriced)
        models = "model has" if len(unpriced) == 1 else "models have"
        return BudgetCheck(
            True,
            f"the plan cannot be checked against safety.max_cost ({limit}): {models} no"
            f" known price: {names}. Give {'it' if len(unpriced) == 1 else 'each'} a price"
            f" under prices: in reconciler.yaml (USD per 1M tokens at standard rates, e.g."
            f" '{unpriced[0]}: {{input: 0.40, output: 2.00}}'); --allow-cost cannot cover"
            " an unknown amount",
            tuple(notes),
        )
    if total_usd <= max_cost:
        return BudgetCheck(False, None, tuple(notes))
    shown = format_usd(ceil_cents(total_usd))
    if allow_cost is not None and total_usd <= allow_cost:
        allowed = (
            f"estimated cost {shown} is above safety.max_cost ({limit}),"
            f" allowed by --allow-cost={allow_cost}"
        )
        return BudgetCheck(False, None, (*notes, allowed), allowed)
    least = ceil_cents(total_usd)
    if allow_cost is not None:
        message = (
            f"--allow-cost={allow_cost} does not cover the estimated cost {shown}"
            f" (safety.max_cost is {limit}); re-run with --allow-cost={least} to accept it"
        )
    else:
        message = (
            f"estimated cost {shown} is above safety.max_cost ({limit}); re-run with"
            f" --allow-cost={least} to accept it, or raise safety.max_cost"
        )
    return BudgetCheck(True, message, tuple(notes))


# -- reading it back (saved plans are untrusted) ---------------------------------------------

_ESTIMATE_INTS: Final = (
    "requests",
    "input_tokens",
    "output_tokens",
    "unbounded",
    "unknown",
    "pages",
    "annotated_pages",
    "images",
)
_MAX_COUNT: Final = 10**15


def _int(data: Mapping[str, Any], key: str, where: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_COUNT:
        raise ValueError(f"{where}.{key}: expected a count, got {value!r:.40}")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, *, none: bool = False) -> Any:
    value = data.get(key)
    if value is None and none:
        return None
    if not isinstance(value, str) or len(value) > 1000:
        raise ValueError(f"{where}.{key}: expected a string")
    return value


def _amount(data: Mapping[str, Any], key: str, where: str, *, none: bool = False) -> Any:
    value = _str(data, key, where, none=none)
    if value is None:
        return None
    try:
        amount = to_decimal(value)
    except ValueError:
        raise ValueError(f"{where}.{key}: expected an amount, got {value!r:.40}") from None
    if amount < 0:
        raise ValueError(f"{where}.{key}: negative")
    return amount


def _method(data: Mapping[str, Any], where: str) -> Method:
    value = data.get("method")
    if value == "exact":
        return "exact"
    if value == "heuristic":
        return "heuristic"
    raise ValueError(f"{where}.method: expected 'exact' or 'heuristic'")


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object")
    return value


def _estimate_from(data: Any, where: str) -> Estimate:
    data = _mapping(data, where)
    return Estimate(
        **{k: _int(data, k, where) for k in _ESTIMATE_INTS}, method=_method(data, where)
    )


def plan_cost_from_json(data: Any) -> PlanCost:
    """A :class:`PlanCost` saved by :meth:`PlanCost.to_json`, checked field by field
    (ValueError names the first bad one). Amounts are the saved ones (what the reviewer
    saw), not priced again; the total, method and unpriced list are recomputed from the
    changes, never read, so an edited total cannot hide a change's cost."""
    data = _mapping(data, "cost")
    if data.get("version") != SCHEMA_VERSION:
        raise ValueError(f"cost.version: expected {SCHEMA_VERSION}")
    if data.get("currency") != CURRENCY:
        raise ValueError(f"cost.currency: expected {CURRENCY}")
    raw_changes = data.get("changes")
    if not isinstance(raw_changes, list):
        raise ValueError("cost.changes: expected a list")
    discount = _amount(data, "batch_discount", "cost")
    date = _str(data, "price_date", "cost")
    changes = []
    for i, raw in enumerate(raw_changes):
        where = f"cost.changes[{i}]"
        c = _mapping(raw, where)
        cost_data = _mapping(c.get("cost"), f"{where}.cost")
        status = cost_data.get("status")
        if status not in ("priced", "unpriced"):
            raise ValueError(f"{where}.cost.status: expected 'priced' or 'unpriced'")
        missing = cost_data.get("missing", [])
        if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
            raise ValueError(f"{where}.cost.missing: expected a list of strings")
        amounts = {
            k: _amount(cost_data, k, f"{where}.cost", none=status == "unpriced")
            for k in ("input", "output", "pages", "audio", "total")
        }
        estimate = _estimate_from(c.get("estimate"), f"{where}.estimate")
        model = _str(c, "model", where, none=True)
        changes.append(
            ChangeCost(
                key=_str(c, "key", where),
                model=model,
                endpoint=_str(c, "endpoint", where),
                estimate=estimate,
                cost=Cost(
                    model=model,
                    priced=status == "priced",
                    **amounts,
                    price_date=date,
                    batch_discount=discount,
                    overridden=cost_data.get("overridden") is True,
                    missing=tuple(missing),
                    unknown=estimate.unknown,
                ),
                counter=_str(c, "counter", where),
                agent_id=_str(c, "agent_id", where, none=True),
                unread=_str(c, "unread", where, none=True),
            )
        )
    return _plan_cost(
        tuple(changes),
        price_date=date,
        price_source=_str(data, "price_source", "cost"),
        batch_discount=discount,
        default_output_tokens=_int(data, "default_output_tokens", "cost"),
    )
