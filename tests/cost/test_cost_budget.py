"""A plan's cost (estimate_plan_cost), the budget guard (check_budget), the saved form
(to_json / plan_cost_from_json), and actual usage from result lines."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cost.helpers import WordCounter, chat, lines
from reconciler.cost.actuals import Usage, actual_cost, usage_of_lines
from reconciler.cost.budget import (
    CostItem,
    PlanCost,
    check_budget,
    estimate_plan_cost,
    plan_cost_from_json,
)
from reconciler.cost.estimate import Estimate
from reconciler.cost.money import ceil_cents
from reconciler.cost.prices import ModelPrice, PriceTable

D = Decimal
CHAT = "/v1/chat/completions"
TABLE = PriceTable(
    date="2026-01-01",
    source="https://example.com/prices",
    batch_discount=D("0.5"),
    models={
        "chat-2601": ModelPrice(input=D("2.00"), output=D("6.00")),
        "ocr-2601": ModelPrice(per_1000_pages=D("2.00")),
        "audio-2601": ModelPrice(per_minute=D("0.006")),
    },
    aliases={"chat-latest": "chat-2601"},
)


def words(_model: str | None) -> WordCounter:
    return WordCounter()


def test_each_change_is_estimated_and_priced_and_the_total_adds_them() -> None:
    requests = lines([chat("one two three", max_tokens=1000)] * 1000)
    precomputed = Estimate(requests=5, input_tokens=1_000_000, output_tokens=0)
    cost = estimate_plan_cost(
        [
            CostItem("cheese-eval", "chat-latest", CHAT, lines=iter(requests)),
            CostItem("cheese-eval[retry]", "chat-2601", CHAT, estimate=precomputed),
        ],
        TABLE,
        counter=words,
    )
    first, second = cost.changes
    assert first.estimate == Estimate(
        requests=1000, input_tokens=1000 * (1 + 2 + 3), output_tokens=1_000_000, method="heuristic"
    )
    assert first.cost.total == D("0.006") + D("3")  # 6,000 in at $1/M, 1M out at $3/M
    assert second.counter == "given" and second.cost.total == D("1")
    assert cost.total == D("4.006")
    assert (cost.method, cost.unpriced, cost.complete) == ("heuristic", (), True)
    assert cost.estimate == first.estimate + second.estimate
    assert (cost.price_date, cost.currency, cost.batch_discount) == ("2026-01-01", "USD", D("0.5"))
    with pytest.raises(ValueError, match="give the change's request lines or its estimate"):
        estimate_plan_cost([CostItem("x", "chat-latest", CHAT)], TABLE)


def test_unpriced_models_and_agents_are_listed_and_left_out_of_the_total() -> None:
    body = lines([chat("hi")])
    cost = estimate_plan_cost(
        [
            CostItem("a", "chat-latest", CHAT, lines=iter(body)),
            CostItem("b", "ft:chat:acme", CHAT, lines=iter(body)),
            CostItem("c", None, CHAT, lines=iter(body), agent_id="ag_123"),
            CostItem("d", "ft:chat:acme", CHAT, lines=iter(body)),
        ],
        TABLE,
        counter=words,
    )
    assert cost.unpriced == ("agent ag_123", "ft:chat:acme")
    assert not cost.complete
    assert cost.total == cost.changes[0].cost.total


def test_unknown_requests_make_the_total_incomplete_but_priced() -> None:
    doc = {"document": {"document_url": "https://example.com/a.pdf"}}
    cost = estimate_plan_cost(
        [
            CostItem(
                "scan", "ocr-2601", "/v1/ocr", lines=iter(lines([doc, doc | {"pages": [0, 1]}]))
            )
        ],
        TABLE,
    )
    assert (cost.estimate.unknown, cost.estimate.pages) == (1, 2)
    assert cost.total == D("0.002") and cost.unpriced == () and not cost.complete


# -- the guard --------------------------------------------------------------------------------


def test_no_max_cost_never_blocks() -> None:
    assert not check_budget(D("1e6"), None, None, ["ft:x"]).blocked


def test_a_plan_above_max_cost_is_blocked_and_says_what_allows_it() -> None:
    check = check_budget(D("62.4012"), D("50"), None, [])
    assert check.blocked
    assert check.message == (
        "estimated cost $62.41 is above safety.max_cost ($50.00); re-run with"
        " --allow-cost=62.41 to accept it, or raise safety.max_cost"
    )
    assert not check_budget(D("62.4012"), D("50"), D("62.41"), []).blocked
    allowed = check_budget(D("62.4012"), D("50"), D("100"), [])
    assert not allowed.blocked and allowed.notes == (
        "estimated cost $62.41 is above safety.max_cost ($50.00), allowed by --allow-cost=100",
    )
    short = check_budget(D("62.4012"), D("50"), D("60"), [])
    assert short.blocked and short.message == (
        "--allow-cost=60 does not cover the estimated cost $62.41 (safety.max_cost is"
        " $50.00); re-run with --allow-cost=62.41 to accept it"
    )


def test_at_or_under_max_cost_passes() -> None:
    assert not check_budget(D("50"), D("50"), None, []).blocked
    assert not check_budget(D("0"), D("0"), None, []).blocked
    assert check_budget(D("0.000001"), D("0"), None, []).blocked


def test_an_unpriced_model_under_max_cost_is_blocked_naming_it_whatever_is_allowed() -> None:
    check = check_budget(D("1"), D("50"), D("1000"), ["ft:chat:acme"])
    assert check.blocked
    assert check.message == (
        "the plan cannot be checked against safety.max_cost ($50.00): model has no known"
        " price: ft:chat:acme. Give it a price under prices: in reconciler.yaml (USD per 1M"
        " tokens at standard rates, e.g. 'ft:chat:acme: {input: 0.40, output: 2.00}');"
        " --allow-cost cannot cover an unknown amount"
    )
    two = check_budget(D("1"), D("50"), None, ["a", "b"])
    assert two.message is not None and "models have no known price: a, b. Give each" in two.message


def test_requests_of_unknown_cost_are_noted_not_blocking() -> None:
    check = check_budget(D("1"), D("50"), None, [], unknown=3)
    assert not check.blocked
    assert check.notes == (
        "3 requests of unknown cost (OCR pages not given, audio) are not in the estimate",
    )


amounts = st.decimals(min_value=0, max_value=10**6, places=4)


@given(amounts, st.none() | amounts, st.none() | amounts, st.lists(st.text(min_size=1), max_size=2))
def test_the_guard_blocks_exactly_when_the_rules_say(
    total: Decimal, max_cost: Decimal | None, allow: Decimal | None, unpriced: list[str]
) -> None:
    check = check_budget(total, max_cost, allow, unpriced)
    expected = max_cost is not None and (
        bool(unpriced) or (total > max_cost and not (allow is not None and total <= allow))
    )
    assert check.blocked == expected
    assert (check.message is not None) == check.blocked
    if check.blocked and not unpriced:
        # The amount the message names is enough: re-running with it passes.
        assert not check_budget(total, max_cost, ceil_cents(total), unpriced).blocked
        assert f"--allow-cost={ceil_cents(total)}" in (check.message or "")


# -- the saved form -------------------------------------------------------------------------


def plan() -> PlanCost:
    return estimate_plan_cost(
        [
            CostItem("a", "chat-latest", CHAT, lines=iter(lines([chat("x y", max_tokens=None)]))),
            CostItem("b", "nope", CHAT, lines=iter(lines([chat("z")]))),
            CostItem("c", None, CHAT, estimate=Estimate(requests=1, input_tokens=3), agent_id="ag"),
        ],
        TABLE,
        counter=words,
    )


def test_a_plan_cost_survives_json_and_back() -> None:
    original = plan()
    data = json.loads(json.dumps(original.to_json()))
    assert data["total"] == str(original.total) and data["version"] == 1
    assert data["unpriced"] == ["agent ag", "nope"]
    assert data["changes"][1]["cost"] == {
        "status": "unpriced",
        "input": None,
        "output": None,
        "pages": None,
        "audio": None,
        "total": None,
        "overridden": False,
        "missing": ["input", "output"],
    }
    assert plan_cost_from_json(data) == original


def test_an_edited_total_cannot_hide_a_change() -> None:
    data = plan().to_json()
    data["total"] = "0"
    data["unpriced"] = []
    loaded = plan_cost_from_json(data)
    assert loaded.total == plan().total and loaded.unpriced == ("agent ag", "nope")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("version",), 2, "cost.version: expected 1"),
        (("currency",), "EUR", "cost.currency: expected USD"),
        (("changes",), {}, "cost.changes: expected a list"),
        (("changes", 0, "cost", "total"), "-1", "cost.changes[0].cost.total: negative"),
        (("changes", 0, "cost", "total"), "NaN", "cost.changes[0].cost.total: expected an amount"),
        (("changes", 0, "cost", "total"), 1.5, "cost.changes[0].cost.total: expected a string"),
        (("changes", 0, "cost", "status"), "free", "cost.changes[0].cost.status: expected"),
        (("changes", 0, "estimate", "requests"), -1, "cost.changes[0].estimate.requests"),
        (("changes", 0, "estimate", "requests"), True, "cost.changes[0].estimate.requests"),
        (("changes", 0, "estimate", "input_tokens"), 10**20, "cost.changes[0].estimate"),
        (("changes", 0, "estimate", "method"), "guess", "cost.changes[0].estimate.method"),
        (("changes", 0, "key"), None, "cost.changes[0].key: expected a string"),
        (("changes", 0), [], "cost.changes[0]: expected an object"),
        (("batch_discount",), "x", "cost.batch_discount: expected an amount"),
        (("default_output_tokens",), "1", "cost.default_output_tokens: expected a count"),
    ],
)
def test_a_tampered_saved_cost_is_refused_naming_the_field(
    path: tuple[Any, ...], value: Any, message: str
) -> None:
    data = copy.deepcopy(plan().to_json())
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError) as err:
        plan_cost_from_json(data)
    assert str(err.value).startswith(message), str(err.value)
    with pytest.raises(ValueError, match="cost: expected an object"):
        plan_cost_from_json([])


# -- actuals ----------------------------------------------------------------------------------


def result(body: dict[str, Any] | None, status: int = 200) -> bytes:
    envelope = {"id": "r", "custom_id": "0", "response": {"status_code": status, "body": body}}
    return json.dumps(envelope | {"error": None}).encode() + b"\n"


def test_actual_usage_is_summed_from_result_lines() -> None:
    stream = [
        result({"usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}),
        result({"usage": {"prompt_tokens": 50, "completion_tokens": 5}}),
        result({"message": "bad request"}, 400),
        b'{"error": {"message": "timeout"}, "response": null}\n',
        b"garbage\n",
        b"\n",
        result({"usage": {"prompt_tokens": -5, "completion_tokens": "9", "x": True}}),
    ]
    usage = usage_of_lines(stream)
    assert usage == Usage(results=6, with_usage=2, prompt_tokens=150, completion_tokens=25)
    assert usage.without_usage == 4
    cost = actual_cost(usage, "chat-latest", TABLE, CHAT)
    assert cost.total == D("0.000225")  # 150 at $1/M + 25 at $3/M


def test_ocr_pages_and_audio_seconds_are_priced_by_their_units() -> None:
    ocr = usage_of_lines(
        [
            result({"pages": [], "usage_info": {"pages_processed": 12, "doc_size_bytes": 1}}),
            result(
                {"pages": [], "usage_info": {"pages_processed": 8}, "document_annotation": "{}"}
            ),
        ]
    )
    assert (ocr.pages, ocr.annotated_pages) == (12, 8)
    audio = usage_of_lines(
        [result({"text": "…", "usage": {"prompt_audio_seconds": 90.5, "prompt_tokens": 4}})]
    )
    assert audio.audio_seconds == D("90.5")
    cost = actual_cost(audio, "audio-2601", TABLE, "/v1/audio/transcriptions")
    assert cost.priced and cost.audio == D("0.004525")  # 90.5 s at $0.006/min, half price


@given(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)), max_size=20), st.data())
def test_usage_adds_up_over_any_split_of_the_results(
    pairs: list[tuple[int, int]], data: st.DataObject
) -> None:
    stream = [result({"usage": {"prompt_tokens": p, "completion_tokens": c}}) for p, c in pairs]
    cut = data.draw(st.integers(0, len(stream)))
    whole = usage_of_lines(stream)
    assert usage_of_lines(stream[:cut]) + usage_of_lines(stream[cut:]) == whole
    assert whole.prompt_tokens == sum(p for p, _ in pairs)
    assert whole.with_usage == whole.results == len(pairs)
