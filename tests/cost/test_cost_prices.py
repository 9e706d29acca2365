"""The shipped price table, overrides, pricing and money formatting."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.cost.estimate import Estimate
from reconciler.cost.money import ceil_cents, format_usd, parse_usd, to_decimal
from reconciler.cost.prices import (
    ModelPrice,
    PriceTable,
    PriceTableError,
    parse_table,
    shipped_table,
)
from reconciler.cost.pricing import Quantities, cost_of, price

D = Decimal


@dataclass(frozen=True)
class Override:
    """What config.model.PriceOverride carries (the protocol prices.py reads)."""

    input: Decimal | None = None
    output: Decimal | None = None
    per_1000_pages: Decimal | None = None
    per_1000_annotated_pages: Decimal | None = None
    per_minute: Decimal | None = None


def raw_table() -> dict[str, Any]:
    text = (resources.files("reconciler.cost") / "prices.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def test_the_shipped_table_is_dated_sourced_and_discounted() -> None:
    table = shipped_table()
    assert date.fromisoformat(table.date) <= date.today()
    assert table.source.startswith("https://mistral.ai/")
    assert "collected_from" in raw_table()
    assert table.batch_discount == D("0.50")
    assert table.currency == "USD"
    assert table.describe() == f"Mistral prices of {table.date}, batch -50 %"


def test_the_table_covers_the_catalogue_per_endpoint_family() -> None:
    table = shipped_table()
    assert table.lookup("mistral-small-latest") == table.models["mistral-small-2603"]
    for alias in (
        "mistral-large-latest",
        "mistral-medium-latest",
        "mistral-small-latest",
        "magistral-medium-latest",
        "ministral-8b-latest",
        "codestral-latest",
        "devstral-latest",
        "mistral-embed",
        "codestral-embed",
        "mistral-moderation-latest",
        "voxtral-mini-latest",
        "pixtral-large-latest",
        "open-mistral-nemo",
    ):
        assert table.lookup(alias) is not None, alias
    ocr = table.lookup("mistral-ocr-latest")
    assert ocr is not None and ocr.per_1000_pages is not None and ocr.input is None
    embed = table.lookup("mistral-embed")
    assert embed is not None and embed.input is not None and embed.output is None
    transcribe = table.lookup("voxtral-mini-latest")
    assert transcribe is not None and transcribe.per_minute is not None
    assert table.lookup("ft:open-mistral-7b:abc:xyz") is None


def test_every_model_the_emulator_serves_for_batch_work_has_a_price() -> None:
    """The table and the emulator's catalogue come from the same model cards, same date:
    a job the emulator accepts is never unpriced for want of a table entry."""
    from reconciler.emulator import catalogue

    table = shipped_table()
    assert table.date == catalogue.CATALOGUE_DATE
    for model in catalogue.MODELS:
        if not model.endpoints:
            continue  # text to speech: no batch endpoint
        for name in model.names:
            price = table.lookup(name)
            assert price is not None, name
            if catalogue.CHAT in model.endpoints:
                assert price.input is not None and price.output is not None, name
            if catalogue.OCR in model.endpoints:
                assert price.per_1000_pages is not None, name
            if catalogue.TRANSCRIPTIONS in model.endpoints:
                assert price.per_minute is not None, name


def test_every_entry_of_the_shipped_file_is_well_formed() -> None:
    data = raw_table()
    for model, entry in data["models"].items():
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*", model), model
        for key, value in entry.items():
            if key != "name":
                assert re.fullmatch(r"\d+\.\d+", value), (model, key, value)
    assert set(data["aliases"].values()) <= set(data["models"])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": {"m": {"input": "-1"}}}, "models.m.input: negative"),
        ({"models": {"m": {"input": 0.1}}}, "models.m.input: write prices as strings, not float"),
        ({"models": {"m": {"input": "x"}}}, "models.m.input: must be a number"),
        ({"models": {"m": {"inptu": "1"}}}, "models.m: unknown keys ['inptu']"),
        ({"models": {"m": {"name": "M"}}}, "models.m: no price"),
        ({"aliases": {"m-latest": "gone"}}, "aliases.m-latest: 'gone' is not in models"),
        ({"batch_discount": "1"}, "batch_discount: must be below 1"),
        ({"currency": "EUR"}, "currency: only USD is supported"),
        ({"date": None, "__delete__": "date"}, "missing 'date'"),
    ],
)
def test_a_broken_table_is_refused_naming_the_entry(change: dict[str, Any], message: str) -> None:
    data = {
        "date": "2026-01-01",
        "source": "https://example.com",
        "batch_discount": "0.5",
        "models": {"ok": {"input": "1.00"}},
        "aliases": {},
    }
    delete = change.pop("__delete__", None)
    data.update(change)
    if delete:
        del data[delete]
    with pytest.raises(PriceTableError) as err:
        parse_table(data)
    assert str(err.value) == message


TABLE = PriceTable(
    date="2026-01-01",
    source="https://example.com/prices",
    batch_discount=D("0.5"),
    models={
        "chat-2601": ModelPrice(input=D("1.00"), output=D("3.00"), name="Chat"),
        "embed-2601": ModelPrice(input=D("0.10")),
        "ocr-2601": ModelPrice(per_1000_pages=D("2.00"), per_1000_annotated_pages=D("3.00")),
        "audio-2601": ModelPrice(per_minute=D("0.006")),
    },
    aliases={"chat-latest": "chat-2601"},
)


def test_overrides_merge_field_by_field_and_reach_aliases_of_the_dated_id() -> None:
    table = TABLE.with_overrides({"chat-2601": Override(output=D("5"))})
    merged = table.lookup("chat-latest")
    assert merged == ModelPrice(input=D("1.00"), output=D("5"), name="Chat", overridden=True)
    assert table.lookup("chat-2601") == merged
    alias_only = TABLE.with_overrides({"chat-latest": Override(input=D("9"))})
    assert alias_only.lookup("chat-latest").input == D("9")  # type: ignore[union-attr]
    assert alias_only.lookup("chat-2601") == TABLE.models["chat-2601"]  # the dated id keeps it
    new = TABLE.with_overrides({"ft:chat:me": Override(input=D("2"), output=D("6"))})
    assert new.lookup("ft:chat:me") == ModelPrice(input=D("2"), output=D("6"), overridden=True)
    assert new.describe() == "Mistral prices of 2026-01-01, batch -50 %, 1 overridden by prices:"


def test_a_cost_applies_the_batch_discount_to_each_quantity() -> None:
    e = Estimate(requests=10, input_tokens=2_000_000, output_tokens=1_000_000)
    cost = cost_of(e, "chat-latest", TABLE)
    assert (cost.input, cost.output, cost.total) == (D("1.000"), D("1.500"), D("2.500"))
    assert cost.priced and cost.status == "priced" and cost.price_date == "2026-01-01"
    ocr = cost_of(Estimate(requests=3, pages=1000, annotated_pages=500), "ocr-2601", TABLE)
    assert ocr.pages == D("1.75") and ocr.total == D("1.75")
    audio = price(Quantities(requests=1, audio_seconds=D("600")), "audio-2601", TABLE)
    assert audio.audio == D("0.03")
    tiny = cost_of(Estimate(requests=1, input_tokens=300), "embed-2601", TABLE)
    assert tiny.total == D("0.000015")  # exact: no float drift, no rounding


def test_an_override_of_1000_dollars_per_million_moves_the_estimate_exactly() -> None:
    e = Estimate(requests=1, input_tokens=1_500, output_tokens=500)
    table = TABLE.with_overrides({"chat-latest": Override(input=D("1000"), output=D("1000"))})
    cost = cost_of(e, "chat-latest", table)
    assert cost.total == D("1.000")  # 2,000 tokens at $1,000 per million, half price
    assert cost.overridden


def test_unpriced_models_and_missing_prices_have_no_amount() -> None:
    e = Estimate(requests=1, input_tokens=10, output_tokens=10)
    unknown = cost_of(e, "nope", TABLE)
    assert (unknown.priced, unknown.total, unknown.missing) == (False, None, ("input", "output"))
    assert unknown.status == "unpriced"
    embed_chat = cost_of(e, "embed-2601", TABLE)  # an embedding model has no output price
    assert (embed_chat.priced, embed_chat.missing) == (False, ("output",))
    agent = cost_of(e, None, TABLE)
    assert not agent.priced
    nothing = cost_of(Estimate(), "nope", TABLE)  # nothing to price: no cost, known
    assert nothing.priced and nothing.total == 0
    unknown_pages = cost_of(Estimate(requests=2, unknown=2), "ocr-2601", TABLE)
    assert unknown_pages.priced and unknown_pages.total == 0 and unknown_pages.unknown == 2


# -- money ----------------------------------------------------------------------------------


def test_amounts_are_shown_to_the_cent_and_small_ones_are_not_zero() -> None:
    assert format_usd(D("12.4")) == "$12.40"
    assert format_usd(D("1234.505")) == "$1,234.50"  # half-even, display only
    assert format_usd(D("0")) == "$0.00"
    assert format_usd(D("0.0042")) == "$0.0042"
    assert format_usd(D("0.000015")) == "$0.000015"
    assert format_usd(D("0.00999")) == "$0.0100"
    assert ceil_cents(D("62.401")) == D("62.41")
    assert ceil_cents(D("62.40")) == D("62.40")


@given(st.decimals(min_value=D("0.000001"), max_value=D("1e9"), places=6))
def test_a_positive_amount_is_never_shown_as_zero(amount: Decimal) -> None:
    shown = format_usd(amount)
    assert shown.startswith("$") and shown != "$0.00"
    assert D(shown[1:].replace(",", "")) > 0


@pytest.mark.parametrize(
    ("text", "value"),
    [("12", "12"), ("12.40", "12.40"), ("$12.40", "12.40"), (" 12.40 USD ", "12.40"), ("0", "0")],
)
def test_allow_cost_amounts_are_read_as_dollars(text: str, value: str) -> None:
    assert parse_usd(text) == D(value)


@pytest.mark.parametrize("text", ["", "-5", "abc", "1e3", "NaN", "inf", "1.2.3", ".", "$", "5 EUR"])
def test_bad_amounts_are_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError, match="is not an amount in dollars"):
        parse_usd(text)


def test_user_numbers_become_the_decimal_they_were_written_as() -> None:
    assert to_decimal(0.1) == D("0.1")
    assert to_decimal(3) == D(3)
    for bad in (True, None, float("nan"), float("inf"), "x", [1]):
        with pytest.raises(ValueError):
            to_decimal(bad)
