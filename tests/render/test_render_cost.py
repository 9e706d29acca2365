"""The estimate in every view of a plan: the ``cost`` line of each create and replace, the
total under the summary, what it leaves out, the guard's error, the markdown summary
table's cost column, the JSON ``cost`` objects (valid against the schema), and untrusted
names escaped."""

from __future__ import annotations

import dataclasses
import json
import re
from decimal import Decimal
from pathlib import Path

import jsonschema
from render_fixtures import WS, realistic_plan

from reconciler.api import Status
from reconciler.config.model import JobSpec
from reconciler.cost.actuals import Usage, actual_cost
from reconciler.cost.budget import CostItem, PlanCost, estimate_plan_cost
from reconciler.cost.estimate import Estimate
from reconciler.cost.prices import shipped_table
from reconciler.cost.pricing import cost_of
from reconciler.live import LiveJob
from reconciler.plan.model import Action, Budget, Change, GuardKind, Plan, Reason, Violation
from reconciler.render import json as json_view
from reconciler.render import markdown, status, text

CHAT = "/v1/chat/completions"
SCHEMA = json.loads((Path(__file__).parents[2] / "schemas" / "plan.schema.json").read_text())
UNREAD = (
    "its requests are in files uploaded by other means (input_files), which planning does not read"
)
DATE = shipped_table().date


def realistic_cost() -> PlanCost:
    """cheese-eval: 12 requests at mistral-medium ($1.50 / $7.50 per M): (12,000 x 1.5 +
    6,000 x 7.5) / 1M / 2 = $0.0315; nightly on input_files; wine-quick unbounded."""
    return estimate_plan_cost(
        [
            CostItem(
                "cheese-eval",
                "mistral-medium-latest",
                CHAT,
                estimate=Estimate(12, 12_000, 6_000, method="heuristic"),
                counter="heuristic (tekken)",
            ),
            CostItem("nightly", "mistral-ocr-latest", "/v1/ocr", unread=UNREAD),
            CostItem(
                "wine-quick",
                "mistral-small-latest",
                CHAT,
                estimate=Estimate(1, 5, 1024, unbounded=1, method="heuristic"),
                counter="heuristic (tekken)",
            ),
        ],
        shipped_table(),
    )


def costed(budget: Budget | None = None) -> Plan:
    return realistic_plan().with_cost(realistic_cost(), budget or Budget(Decimal(50)))


def lines_of(out: str, prefix: str) -> list[str]:
    return [line.strip() for line in out.splitlines() if line.strip().startswith(prefix)]


def test_text_has_a_cost_line_per_create_and_replace_and_the_total() -> None:
    out = text.render(costed(), color=False)
    assert lines_of(out, "cost") == [
        "cost     = ≈ $0.03 (12 requests: 12,000 input + ≤ 6,000 output tokens,"
        " mistral-medium-latest)",
        f"cost     = unknown: {UNREAD}",
        "cost          = ≈ $0.00031 (1 request: 5 input + 1,024 output tokens,"
        " mistral-small-latest; 1 request without max_tokens (output unbounded), counted at"
        " 1,024 output tokens each)",
    ]
    summary = out.split("Plan: 2 to create, 1 to replace, 1 to cancel, 1 to delete.\n", 1)[1]
    assert summary.splitlines()[0] == (
        f"Estimated cost of this plan: $0.03 (≈, batch prices of {DATE}); not included:"
        " 1 job on input_files (not read)"
    )
    assert "Warning" not in out.split("Estimated cost", 1)[1].split("Warning: flaky")[0]
    # Cancels and deletes cost nothing: no line in their blocks.
    old_job = out.split('x job "old-job" {', 1)[1].split("}", 1)[0]
    assert "cost" not in old_job


def test_no_estimate_no_cost_line() -> None:
    out = text.render(realistic_plan(), color=False)
    assert "cost" not in out.lower()
    assert "Estimated cost" not in text.render(Plan(workspace=WS), color=False)
    no_changes = Plan(workspace=WS).with_cost(None, Budget(Decimal(1)))
    assert text.render(no_changes, color=False) == (
        "No changes. Live jobs match the configuration.\n"
    )


def test_exact_estimates_have_no_approximation_sign() -> None:
    cost = estimate_plan_cost(
        [CostItem("wine-quick", "mistral-small-latest", CHAT, estimate=Estimate(1, 1_000_000, 0))],
        shipped_table(),
    )
    plan = Plan(workspace=WS, changes=realistic_plan().changes[4:]).with_cost(cost, Budget())
    out = text.render(plan, color=False)
    assert "cost          = $0.08 (1 request: 1,000,000 input tokens, mistral-small-latest)" in out
    assert f"Estimated cost of this plan: $0.08 (exact, batch prices of {DATE})" in out


def test_an_amount_allowed_above_the_budget_is_a_warning() -> None:
    out = text.render(costed(Budget(Decimal("0.01"), Decimal("0.04"))), color=False)
    assert "Warning: Cost estimate" in out
    assert (
        "estimated cost $0.04 is above safety.max_cost ($0.01), allowed by --allow-cost=0.04"
        in " ".join(out.split())
    )
    assert "Warning: Cost estimate" not in text.render(costed(), color=False)


def test_the_budget_violation_is_an_error_block() -> None:
    message = (
        "estimated cost $0.04 is above safety.max_cost ($0.01); re-run with --allow-cost=0.04"
        " to accept it, or raise safety.max_cost"
    )
    plan = realistic_plan().with_cost(
        realistic_cost(), Budget(Decimal("0.01")), Violation(GuardKind.MAX_COST, message)
    )
    out = text.render(plan, color=False)
    assert "Error: Plan is not within its cost budget (safety.max_cost)" in out
    assert message in " ".join(out.split())
    assert plan.blocked


def test_markdown_has_a_cost_column_and_the_total() -> None:
    out = markdown.render(costed())
    table = out.split("| Action |", 1)[1].split("\n\n", 1)[0]
    assert ("| Action |" + table).splitlines() == [
        "| Action | Jobs | Estimated cost |",
        "| :-- | --: | --: |",
        "| `+` create | 2 | ≈ &#36;0.00031 + 1 unknown |",
        "| `-/+` replace (cancel, then create) | 1 | ≈ &#36;0.03 |",
        "| `x` cancel | 1 | – |",
        "| `-` delete | 1 | – |",
        "| **Total** | 5 | **≈ &#36;0.03** |",
    ]
    assert f"Estimated cost of this plan: &#36;0.03 (≈, batch prices of {DATE})" in out
    assert "About the cost estimate" not in out  # nothing to warn about: within budget
    allowed = markdown.render(costed(Budget(Decimal("0.01"), Decimal("0.04"))))
    assert "> [!NOTE]\n> About the cost estimate:\n> - estimated cost &#36;0.04 is above" in allowed
    # Without an estimate, the table keeps its two columns.
    assert "| Action | Jobs |\n| :-- | --: |" in markdown.render(realistic_plan())


def test_json_carries_cost_per_change_and_the_total_and_validates() -> None:
    plan = costed(Budget(Decimal(50), Decimal("80.5")))
    doc = json.loads(json_view.render(plan))
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    cost = doc["cost"]
    assert (cost["currency"], cost["price_date"], cost["method"]) == ("USD", DATE, "heuristic")
    # wine-quick: (5 x 0.15 + 1,024 x 0.60) / 1M / 2 = $0.000307575
    assert Decimal(cost["total"]) == Decimal("0.0315") + Decimal("0.000307575")
    assert cost["complete"] is False and cost["unread"] == ["nightly"]
    assert cost["budget"] == {"max_cost": "50", "allow_cost": "80.5"}
    assert cost["text"].startswith("Estimated cost of this plan: $0.03")
    by_name = {c["name"]: c["cost"] for c in doc["changes"]}
    assert by_name["old-job"] is None
    assert by_name["cheese-eval"]["cost"]["total"] == "0.03150"
    assert by_name["cheese-eval"]["estimate"]["input_tokens"] == 12_000
    assert by_name["nightly"]["unread"] == UNREAD
    assert by_name["wine-quick"]["estimate"]["unbounded"] == 1
    # Tiny amounts are plain decimals, never 7.5E-7.
    tiny = estimate_plan_cost(
        [CostItem("wine-quick", "mistral-small-latest", CHAT, estimate=Estimate(1, 5, 0))],
        shipped_table(),
    )
    small = Plan(workspace=WS, changes=realistic_plan().changes[4:]).with_cost(tiny, Budget())
    small_doc = json.loads(json_view.render(small))
    jsonschema.Draft202012Validator(SCHEMA).validate(small_doc)
    assert small_doc["cost"]["total"] == "0.0000003750"


def test_a_violation_for_cost_is_in_the_schema() -> None:
    plan = costed().with_cost(
        realistic_cost(), Budget(Decimal(0)), Violation(GuardKind.MAX_COST, "too dear")
    )
    doc = json.loads(json_view.render(plan))
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert doc["violations"][-1]["guard"] == "max_cost" and doc["blocked"] is True


def test_untrusted_model_names_are_escaped_in_every_view() -> None:
    hostile = "ft:x\x1b]8;;https://evil\x07|<b>[pwn](http://e)</b>@here"
    spec = JobSpec(name="tuned", endpoint=CHAT, model=hostile, agent_id=None, requests_json="[]")
    change = Change(Action.CREATE, "tuned", Reason.NEW, spec=spec, attempt=1, create_id="c")
    cost = estimate_plan_cost(
        [CostItem("tuned", hostile, CHAT, estimate=Estimate(1, 10, 10))], shipped_table()
    )
    plan = Plan(workspace=WS, changes=(change,)).with_cost(cost, Budget())
    shown = text.render(plan, color=False)
    assert "\x1b" not in shown and "\x07" not in shown
    comment = markdown.render(plan)
    assert "\x1b" not in comment
    # Outside the diff fence (the table, the total line), as markdown-escaped text.
    prose = re.sub(r"```diff\n.*?\n```", "", comment, flags=re.S)
    assert "<b>" not in prose and "[pwn]" not in prose and "@here" not in prose
    assert "not included: unpriced ft:x" in prose
    assert "\x1b" not in json_view.render(plan)


def finished(name: str) -> LiveJob:
    return LiveJob(
        id="job-1",
        name=name,
        workspace=WS,
        status=Status.SUCCESS,
        created_at=0,
        endpoint=CHAT,
        model="mistral-small-latest",
        agent_id=None,
        metadata=(),
        input_files=(),
        spec_digest="d" * 64,
        attempt=1,
        create_id="c",
        timeout_hours=24,
        inputs_shown=None,
        requests_shown=None,
        total_requests=20,
        completed_requests=20,
        succeeded_requests=20,
        output_file="file-out",
    )


def test_status_shows_estimate_and_actual_beside_each_other() -> None:
    table = shipped_table()
    estimate = Estimate(20, 1452, 240, method="heuristic")
    usage = Usage(results=20, with_usage=20, prompt_tokens=1624, completion_tokens=240)
    rc = status.RowCost(
        estimate=estimate,
        estimated=cost_of(estimate, "mistral-small-latest", table),
        usage=usage,
        actual=actual_cost(usage, "mistral-small-latest", table, CHAT),
    )
    row = status.Row("prose", finished("prose"), 1, "in sync", status.Health("healthy"), rc)
    out = status.render_text([row], now=10, cost=True)
    header, line, _, summary = out.splitlines()
    assert header.split()[-2:] == ["ESTIMATE", "ACTUAL"]
    assert line.endswith("≈ $0.00018 (1,452 in + ≤ 240 out)  $0.00019 (1,624 in + 240 out)")
    assert summary.startswith("Cost of 1 finished job: estimated $0.00")
    assert "input tokens +11.8 %, output tokens +0.0 %" in summary
    doc = json.loads(status.render_json([row], workspace=WS, now=10))
    cost = doc["jobs"][0]["cost"]
    assert cost["estimate"]["input_tokens"] == 1452 and cost["actual"]["prompt_tokens"] == 1624
    assert Decimal(cost["actual"]["cost"]) == (
        Decimal(1624) * Decimal("0.15") + Decimal(240) * Decimal("0.60")
    ) / Decimal(2_000_000)
    plain = status.render_text([dataclasses.replace(row, cost=None)], now=10)
    assert "ESTIMATE" not in plain
