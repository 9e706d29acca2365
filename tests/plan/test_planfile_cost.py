"""Saved plans keep their estimate, the budget it was checked against and the prices: it
was made with; reading them back is strict (a plan file is untrusted)."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from plan_factories import WS, spec

from reconciler.config.model import PriceOverride
from reconciler.cost.budget import CostItem, estimate_plan_cost
from reconciler.cost.estimate import Estimate
from reconciler.cost.prices import shipped_table
from reconciler.plan import planfile
from reconciler.plan.model import Budget, Plan
from reconciler.plan.planfile import PlanContext, PlanFileError
from reconciler.plan.planner import Policy, plan

POLICY = Policy(max_destroy=5, allow_destroy=None, protected=frozenset())
PRICES = ((("mistral-small-latest", PriceOverride(input=Decimal("1000"), output=Decimal("2.5")))),)
REQUESTS = '[{"body":{"max_tokens":10},"custom_id":"0"}]'


def saved(tmp_path: Path) -> tuple[Path, Plan]:
    desired = [spec("a", requests_json=REQUESTS), spec("b", requests_json=REQUESTS)]
    counter = itertools.count(1)
    p = plan(desired, [], POLICY, workspace=WS).with_create_ids(lambda: f"cid-{next(counter)}")
    table = shipped_table().with_overrides(dict(PRICES))
    cost = estimate_plan_cost(
        [
            CostItem(
                c.name, "mistral-small-latest", "/v1/chat/completions", estimate=Estimate(1, 7, 10)
            )
            for c in p.changes
        ],
        table,
    )
    p = p.with_cost(cost, Budget(Decimal("0.01"), Decimal("0.02")))
    context = PlanContext(
        server="local",
        config_digest=planfile.config_digest(desired, POLICY),
        desired=tuple(desired),
        policy=POLICY,
        created_at="2026-11-26T06:00:00+00:00",
        prices=PRICES,
    )
    path = tmp_path / "plan.json"
    planfile.save(p, path, context=context)
    return path, p


def test_the_estimate_budget_and_prices_survive_the_round_trip(tmp_path: Path) -> None:
    path, p = saved(tmp_path)
    loaded = planfile.load(path)
    assert loaded.plan.cost == p.cost
    assert loaded.plan.budget == Budget(Decimal("0.01"), Decimal("0.02"))
    assert loaded.context.prices == PRICES
    doc = json.loads(path.read_text())
    assert doc["budget"] == {"max_cost": "0.01", "allow_cost": "0.02"}
    assert doc["prices"] == {"mistral-small-latest": {"input": "1000", "output": "2.5"}}
    assert [c["key"] for c in doc["cost"]["changes"]] == ["a", "b"]


def test_a_plan_file_without_an_estimate_still_loads(tmp_path: Path) -> None:
    path, _ = saved(tmp_path)
    doc = json.loads(path.read_text())
    for key in ("cost", "budget", "prices"):
        del doc[key]
    path.write_text(json.dumps(doc))
    loaded = planfile.load(path)
    assert (loaded.plan.cost, loaded.plan.budget, loaded.context.prices) == (None, Budget(), ())


def edit(doc: dict[str, Any], where: tuple[Any, ...], value: Any) -> None:
    node = doc
    for key in where[:-1]:
        node = node[key]
    if value is KeyError:
        del node[where[-1]]
    else:
        node[where[-1]] = value


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        (("cost", "changes", 0, "estimate", "input_tokens"), -5, "cost.changes\\[0\\].estimate"),
        (("cost", "changes", 0, "cost", "total"), "NaN", "cost.changes\\[0\\].cost.total"),
        (("cost", "version"), 9, "cost.version: expected 1"),
        (("cost", "changes"), [], "the cost estimate does not cover exactly the plan's creates"),
        (("cost", "changes", 1, "key"), "c", "does not cover exactly the plan's creates"),
        (("budget", "max_cost"), 0.01, "'max_cost' should be an amount written as a string"),
        (("budget", "allow_cost"), "-1", "'allow_cost' is not an amount"),
        (("budget", "allow_cost"), "Infinity", "'allow_cost' is not an amount"),
        (("prices", "mistral-small-latest", "discount"), "1", "should be an object of prices"),
        (("prices", "mistral-small-latest", "input"), "cheap", "'input' is not an amount"),
    ],
)
def test_an_edited_estimate_budget_or_price_is_refused(
    tmp_path: Path, where: tuple[Any, ...], value: Any, message: str
) -> None:
    path, _ = saved(tmp_path)
    doc = json.loads(path.read_text())
    edit(doc, where, value)
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match=message):
        planfile.load(path)
