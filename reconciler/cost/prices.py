"""The price table: Mistral's dated public prices, shipped in ``prices.json``, plus the
per-model overrides of ``prices:`` in reconciler.yaml.

Prices are at standard rates; the batch discount (50 %) is a property of the table and is
applied when an estimate is priced (:mod:`reconciler.cost.pricing`), to overrides too:
``prices:`` are written in the same standard-rate units as Mistral's pricing page.

Lookup of a model id, in order:

1. an override written for that exact id, merged field by field over the table's entry
   for it (a field the override leaves out keeps the table's value);
2. for an alias (``mistral-small-latest``), an override of the id it resolves to
   (overriding ``mistral-small-2603`` also prices ``mistral-small-latest``);
3. the table's entry for the id, or for the id the alias resolves to;
4. nothing: the model is *unpriced* (fine-tuned ``ft:…`` ids, agents, new models).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Final, Protocol

from reconciler.cost.money import CURRENCY, to_decimal

PRICE_FIELDS: Final = (
    "input",
    "output",
    "per_1000_pages",
    "per_1000_annotated_pages",
    "per_minute",
)
UNITS: Final = {
    "input": "USD per 1M input tokens",
    "output": "USD per 1M output tokens",
    "per_1000_pages": "USD per 1,000 OCR pages",
    "per_1000_annotated_pages": "USD per 1,000 OCR pages with annotations",
    "per_minute": "USD per minute of audio",
}


@dataclass(frozen=True)
class ModelPrice:
    """One model's prices at standard rates; None where the model has no such price."""

    input: Decimal | None = None  # USD per 1M input tokens
    output: Decimal | None = None  # USD per 1M output tokens
    per_1000_pages: Decimal | None = None  # OCR
    per_1000_annotated_pages: Decimal | None = None  # OCR with document/bbox annotations
    per_minute: Decimal | None = None  # audio transcription
    name: str = ""  # the product name, for people ("Mistral Small 4")
    overridden: bool = False  # at least one field comes from prices: in reconciler.yaml

    def merged(self, override: PriceFields) -> ModelPrice:
        changes: dict[str, Any] = {
            k: getattr(override, k) for k in PRICE_FIELDS if getattr(override, k) is not None
        }
        return replace(self, **changes, overridden=True)


class PriceFields(Protocol):
    """What an override carries (``reconciler.config.model.PriceOverride`` has these)."""

    @property
    def input(self) -> Decimal | None: ...
    @property
    def output(self) -> Decimal | None: ...
    @property
    def per_1000_pages(self) -> Decimal | None: ...
    @property
    def per_1000_annotated_pages(self) -> Decimal | None: ...
    @property
    def per_minute(self) -> Decimal | None: ...


@dataclass(frozen=True)
class PriceTable:
    date: str  # ISO date the prices were collected: printed with every estimate
    source: str  # URL of the prices
    batch_discount: Decimal  # 0.50: batch requests cost half the standard rate
    models: Mapping[str, ModelPrice]
    aliases: Mapping[str, str] = field(default_factory=dict)  # "-latest" id -> dated id
    overrides: Mapping[str, ModelPrice] = field(default_factory=dict)  # from prices:
    currency: str = CURRENCY

    def resolve(self, model: str) -> str:
        """The dated id an alias stands for; any other id as it is."""
        return self.aliases.get(model, model)

    def lookup(self, model: str) -> ModelPrice | None:
        """The model's prices (see the module docstring for the order), or None."""
        target = self.resolve(model)
        base = self.models.get(model) or self.models.get(target)
        override = self.overrides.get(model) or self.overrides.get(target)
        if override is None:
            return base
        return (base or ModelPrice()).merged(override)

    def with_overrides(self, overrides: Mapping[str, PriceFields]) -> PriceTable:
        """This table with ``prices:`` from reconciler.yaml on top (replacing earlier ones)."""
        converted = {
            model: ModelPrice(**{k: getattr(o, k) for k in PRICE_FIELDS}, overridden=True)
            for model, o in overrides.items()
        }
        return replace(self, overrides=converted)

    def describe(self) -> str:
        """``Mistral prices of 2026-08-21, batch -50 %`` (``, N overridden`` when some are)."""
        pct = (self.batch_discount * 100).normalize()
        text = f"Mistral prices of {self.date}, batch -{pct:f} %"
        if self.overrides:
            n = len(self.overrides)
            text += f", {n} overridden by prices:"
        return text


class PriceTableError(ValueError):
    """The shipped table is broken: a packaging bug, never a user's mistake."""


def parse_table(data: Mapping[str, Any]) -> PriceTable:
    """A :class:`PriceTable` from the JSON shape of ``prices.json``; raises PriceTableError
    naming the first broken entry (tests run it on the shipped file)."""
    try:
        models: dict[str, ModelPrice] = {}
        for model, entry in data["models"].items():
            unknown = set(entry) - {*PRICE_FIELDS, "name"}
            if unknown:
                raise PriceTableError(f"models.{model}: unknown keys {sorted(unknown)}")
            prices: dict[str, Any] = {
                k: _price(f"models.{model}.{k}", entry[k]) for k in PRICE_FIELDS if k in entry
            }
            if not prices:
                raise PriceTableError(f"models.{model}: no price")
            models[model] = ModelPrice(**prices, name=str(entry.get("name", "")))
        aliases = dict(data.get("aliases", {}))
        for alias, target in aliases.items():
            if target not in models:
                raise PriceTableError(f"aliases.{alias}: {target!r} is not in models")
            if alias in models:
                raise PriceTableError(f"aliases.{alias}: also a model")
        discount = _price("batch_discount", data["batch_discount"])
        if discount >= 1:
            raise PriceTableError("batch_discount: must be below 1")
        if data.get("currency", CURRENCY) != CURRENCY:
            raise PriceTableError(f"currency: only {CURRENCY} is supported")
        return PriceTable(
            date=str(data["date"]),
            source=str(data["source"]),
            batch_discount=discount,
            models=models,
            aliases=aliases,
        )
    except KeyError as err:
        raise PriceTableError(f"missing {err}") from None


def _price(where: str, value: Any) -> Decimal:
    if not isinstance(value, str):  # strings: a JSON float would not be exact
        raise PriceTableError(f"{where}: write prices as strings, not {type(value).__name__}")
    try:
        price = to_decimal(value)
    except ValueError as err:
        raise PriceTableError(f"{where}: {err}") from None
    if price < 0:
        raise PriceTableError(f"{where}: negative")
    return price


@cache
def shipped_table() -> PriceTable:
    """The table shipped in the package (``reconciler/cost/prices.json``), read once."""
    text = (resources.files("reconciler.cost") / "prices.json").read_text(encoding="utf-8")
    return parse_table(json.loads(text))
