"""``prices:`` and ``safety.max_cost`` in reconciler.yaml: read as exact Decimals, and every
bad value reported at its ``file:line:col`` with the field, all at once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from config.helpers import Workdir
from reconciler.config.loader import load
from reconciler.config.model import PriceOverride
from reconciler.cost.prices import shipped_table
from reconciler.errors import Location

JOB = """\
jobs:
  a:
    endpoint: /v1/embeddings
    model: mistral-embed
    input_files: [6f1c2e0a-1111-2222-3333-444455556666]
"""


def test_prices_and_max_cost_are_read_as_written(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": """\
version: 1
workspace: ws
safety:
  max_cost: 50.10
prices:
  mistral-small-latest: {input: 0.1, output: 0.30}
  ft:open-mistral-7b:acme:1: {input: 1000, output: 1000}
  mistral-ocr-latest: {per_1000_pages: 1.5}
""",
            "jobs/a.yaml": JOB,
        }
    )
    state = load(workdir.root)
    assert state.safety.max_cost == Decimal("50.1")
    assert state.safety.max_destroy == 10
    assert [model for model, _ in state.prices] == [
        "ft:open-mistral-7b:acme:1",
        "mistral-ocr-latest",
        "mistral-small-latest",
    ]
    small = state.price_overrides()["mistral-small-latest"]
    assert small == PriceOverride(input=Decimal("0.1"), output=Decimal("0.3"))
    assert str(small.input) == "0.1"  # not 0.1000000000000000055…
    assert small.source == Location("reconciler.yaml", 6, 3)
    assert state.price_overrides()["mistral-ocr-latest"].per_1000_pages == Decimal("1.5")


def test_without_them_there_is_no_limit_and_no_override(workdir: Workdir) -> None:
    workdir.write({"reconciler.yaml": "version: 1\nworkspace: ws\n", "jobs/a.yaml": JOB})
    state = load(workdir.root)
    assert state.safety.max_cost is None
    assert state.prices == () and state.price_overrides() == {}


def test_overrides_from_the_config_reach_the_price_table(workdir: Workdir) -> None:
    workdir.write(
        {
            "reconciler.yaml": "version: 1\nworkspace: ws\n"
            "prices:\n  mistral-small-latest: {output: 1000}\n",
            "jobs/a.yaml": JOB,
        }
    )
    table = shipped_table().with_overrides(load(workdir.root).price_overrides())
    price = table.lookup("mistral-small-latest")
    assert price is not None and price.output == Decimal(1000) and price.overridden
    assert price.input == shipped_table().models["mistral-small-2603"].input  # kept


def test_prices_do_not_change_any_job_digest(workdir: Workdir) -> None:
    """Prices and budgets are policy: changing them must never re-run a job."""
    workdir.write({"reconciler.yaml": "version: 1\nworkspace: ws\n", "jobs/a.yaml": JOB})
    before = load(workdir.root).jobs[0].digest
    workdir.write(
        {
            "reconciler.yaml": "version: 1\nworkspace: ws\nsafety: {max_cost: 1}\n"
            "prices:\n  mistral-embed: {input: 9}\n"
        }
    )
    assert load(workdir.root).jobs[0].digest == before


BAD = [
    (
        "safety: {max_cost: -5}\n",
        ["reconciler.yaml:3:20: safety.max_cost: must be at least 0 (got -5)"],
    ),
    (
        "safety: {max_cost: fifty}\n",
        ["reconciler.yaml:3:20: safety.max_cost: must be a number, not a string"],
    ),
    (
        "safety: {max_cost: .inf}\n",
        [
            "reconciler.yaml:3:20: safety.max_cost: must be a finite number (JSON has no NaN or"
            " infinity)"
        ],
    ),
    (
        "safety: {max_cost: true}\n",
        ["reconciler.yaml:3:20: safety.max_cost: must be a number, not a boolean"],
    ),
    (
        "prices:\n  m: {input: -0.1}\n",
        ["reconciler.yaml:4:14: prices.m.input: must be at least 0 (got -0.1)"],
    ),
    (
        'prices:\n  m: {input: "0.10"}\n',
        ["reconciler.yaml:4:14: prices.m.input: must be a number, not a string"],
    ),
    (
        "prices:\n  m: {inptu: 1}\n",
        ["reconciler.yaml:4:7: prices.m.inptu: unknown field (did you mean 'input'?)"],
    ),
    (
        "prices:\n  m: {}\n",
        [
            "reconciler.yaml:4:6: prices.m: give at least one price: input, output (USD per 1M"
            " tokens), per_1000_pages, per_1000_annotated_pages or per_minute"
        ],
    ),
    (
        "prices:\n  m: 0.1\n",
        ["reconciler.yaml:4:6: prices.m: must be a mapping, not a number"],
    ),
    (
        "prices: [m]\n",
        ["reconciler.yaml:3:9: prices: must be a mapping, not a list"],
    ),
    (
        # Every problem at once, the good entry untouched by the bad ones around it.
        "prices:\n  a: {input: -1, outptu: 2}\n  b: {output: 1}\n  c: {}\n",
        [
            "reconciler.yaml:4:14: prices.a.input: must be at least 0 (got -1)",
            "reconciler.yaml:4:18: prices.a.outptu: unknown field (did you mean 'output'?)",
            "reconciler.yaml:6:6: prices.c: give at least one price: input, output (USD per 1M"
            " tokens), per_1000_pages, per_1000_annotated_pages or per_minute",
        ],
    ),
]


@pytest.mark.parametrize(("extra", "expected"), BAD, ids=[b[0].strip() for b in BAD])
def test_bad_prices_and_budgets_are_reported_at_their_line(
    workdir: Workdir, extra: str, expected: list[str]
) -> None:
    workdir.write({"reconciler.yaml": "version: 1\nworkspace: ws\n" + extra, "jobs/a.yaml": JOB})
    result = workdir.validate()
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    n = len(expected)
    summary = f"Error: {n} problem{'s' if n != 1 else ''} found; the configuration is not valid."
    assert result.stderr.splitlines() == [*expected, summary], result.stderr
