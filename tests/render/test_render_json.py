"""The JSON view: exact document for a realistic plan, and always valid against
schemas/plan.schema.json, whose every field is described."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from render_fixtures import CHEESE, NIGHTLY, WINE, WS, blocked_plan, many_creates, realistic_plan

from reconciler.plan.model import Plan
from reconciler.render import json as json_view

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "reconciler" / "schemas" / "plan.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
A64 = "a" * 64


def job_ref(
    id: str, status: str, total: int = 0, done: int = 0, attempt: int = 1
) -> dict[str, Any]:
    return {
        "id": id,
        "status": status,
        "created_at": 1_764_136_800,
        "spec_digest": A64,
        "attempt": attempt,
        "progress": {"total": total, "completed": done, "succeeded": done, "failed": 0},
    }


def spec_json(digest: str, **fields: Any) -> dict[str, Any]:
    return {
        "digest": digest,
        "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest",
        "agent_id": None,
        "input_source": "input_files",
        "inputs": [],
        "input_files": [],
        "request_count": None,
        "metadata": {},
        "timeout_hours": 24,
        "max_attempts": 1,
        "on_change": "replace",
        "prevent_destroy": False,
        "history_limit": None,
        **fields,
    }


def change_json(**fields: Any) -> dict[str, Any]:
    return {
        "live": None,
        "previous": None,
        "spec": None,
        "attempt": None,
        "diffs": [],
        "then_delete": False,
        "await_terminal": False,
        "create_id": None,
        "protected": False,
        "cost": None,
        **fields,
    }


def diff_json(path: str, parts: list[Any], change: str, old: Any, new: Any) -> dict[str, Any]:
    return {"path": path, "parts": parts, "change": change, "old": old, "new": new}


EXPECTED: dict[str, Any] = {
    "format_version": 1,
    "workspace": "research-evals",
    "has_changes": True,
    "blocked": False,
    "summary": {
        "create": 2,
        "replace": 1,
        "cancel": 1,
        "delete": 1,
        "total": 5,
        "destroyed_jobs": 3,
        "text": "Plan: 2 to create, 1 to replace, 1 to cancel, 1 to delete.",
    },
    "targeting": None,
    "plan_id": None,
    "commit": None,
    "changes": [
        {
            "action": "replace",
            "symbol": "-/+",
            "name": "cheese-eval",
            "reason": "spec_changed",
            "description": "cheese-eval must be replaced: model, metadata, inputs changed",
            **change_json(
                live=job_ref("job-0001", "RUNNING", 100, 40),
                spec=spec_json(
                    CHEESE.digest,
                    model="mistral-medium-latest",
                    input_source="inputs",
                    inputs=[
                        {"path": "data/cheese.jsonl", "sha256": "2" * 64, "size": 2048, "lines": 12}
                    ],
                    request_count=12,
                    metadata={"dataset": "cheese-v2", "team": "research"},
                ),
                attempt=1,
                diffs=[
                    diff_json(
                        "model",
                        ["model"],
                        "update",
                        "mistral-small-latest",
                        "mistral-medium-latest",
                    ),
                    diff_json(
                        "metadata.dataset",
                        ["metadata", "dataset"],
                        "update",
                        "cheese-v1",
                        "cheese-v2",
                    ),
                    diff_json(
                        "inputs[0]",
                        ["inputs", 0],
                        "update",
                        "data/cheese.jsonl@111111111111",
                        "data/cheese.jsonl@222222222222",
                    ),
                ],
                create_id="cid-1",
            ),
        },
        {
            "action": "create",
            "symbol": "+",
            "name": "nightly",
            "reason": "retry",
            "description": "nightly will be retried: attempt 2 of 3 (job job-0004 ended FAILED)",
            **change_json(
                previous=job_ref("job-0004", "FAILED"),
                spec=spec_json(
                    NIGHTLY.digest,
                    endpoint="/v1/ocr",
                    model="mistral-ocr-latest",
                    input_files=["6f1c0000-file"],
                    max_attempts=3,
                ),
                attempt=2,
                create_id="cid-2",
            ),
        },
        {
            "action": "cancel",
            "symbol": "x",
            "name": "old-job",
            "reason": "removed",
            "description": "old-job will be cancelled, then deleted (removed from configuration)",
            **change_json(live=job_ref("job-0003", "RUNNING", 50, 10), then_delete=True),
        },
        {
            "action": "delete",
            "symbol": "-",
            "name": "old-job",
            "reason": "removed",
            "description": "old-job will be deleted (removed from configuration)",
            **change_json(live=job_ref("job-0002", "SUCCESS", 50, 50)),
        },
        {
            "action": "create",
            "symbol": "+",
            "name": "wine-quick",
            "reason": "new",
            "description": "wine-quick will be created",
            **change_json(
                spec=spec_json(
                    WINE.digest,
                    input_source="requests",
                    request_count=1,
                    metadata={"team": "research"},
                ),
                attempt=1,
                create_id="cid-3",
            ),
        },
    ],
    "notes": [
        {
            "kind": "exhausted",
            "name": "flaky",
            "description": "flaky will not be retried",
            "message": "Job job-0007 ended FAILED on attempt 2 and max_attempts is 2: it will not "
            "be retried. Change the job's spec, or raise max_attempts, to run it again.",
            "live": job_ref("job-0007", "FAILED", attempt=2),
            "diffs": [],
        },
        {
            "kind": "waiting",
            "name": "summary",
            "description": "summary will be replaced once job job-0005 ends (on_change: wait): "
            "model, metadata changed",
            "message": "on_change is wait: the new version will be created once job job-0005 "
            "(RUNNING) ends.",
            "live": job_ref("job-0005", "RUNNING", 10, 3),
            "diffs": [
                diff_json(
                    "model", ["model"], "update", "mistral-small-latest", "mistral-large-latest"
                ),
                diff_json("metadata.owner", ["metadata", "owner"], "add", None, "ana"),
            ],
        },
        {
            "kind": "done",
            "name": "wine-old",
            "description": "wine-old is done",
            "message": "Job job-0006 succeeded.",
            "live": job_ref("job-0006", "SUCCESS"),
            "diffs": [],
        },
    ],
    "violations": [],
    "cost": None,
}


def test_realistic_plan_exact_document() -> None:
    out = json_view.render(realistic_plan())
    # Exact text: this key order, two-space indent, UTF-8 as is, one trailing newline.
    assert out == json.dumps(EXPECTED, indent=2, ensure_ascii=False) + "\n"


def test_blocked_plan_lists_the_violations() -> None:
    doc = json.loads(json_view.render(blocked_plan()))
    assert doc["blocked"] is True
    assert [(v["guard"], v["names"]) for v in doc["violations"]] == [
        ("prevent_destroy", ["ocr-archive"]),
        ("empty_desired", ["ocr-archive", "old-job"]),
    ]
    assert doc["changes"][0]["protected"] is True
    assert doc["changes"][1]["await_terminal"] is True


def test_the_schema_is_valid_draft_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    "plan",
    [realistic_plan(), blocked_plan(), Plan(workspace=WS), many_creates(3)],
    ids=["realistic", "blocked", "empty", "creates"],
)
def test_output_validates_against_the_schema(plan: Plan) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(json_view.render(plan)))


def test_the_schema_rejects_what_tools_must_not_see() -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    doc = json.loads(json_view.render(realistic_plan()))
    doc["changes"][0]["action"] = "update"
    assert not validator.is_valid(doc)
    doc = json.loads(json_view.render(realistic_plan()))
    doc["format_version"] = 2
    assert not validator.is_valid(doc)
    doc = json.loads(json_view.render(realistic_plan()))
    del doc["changes"][2]["then_delete"]
    assert not validator.is_valid(doc)


def _schemas(node: Any, where: str = "#") -> list[tuple[str, dict[str, Any]]]:
    """Every property schema, item schema and definition in the document."""
    found: list[tuple[str, dict[str, Any]]] = []
    if not isinstance(node, dict):
        return found
    for key in ("properties", "$defs"):
        for name, sub in node.get(key, {}).items():
            found.append((f"{where}/{key}/{name}", sub))
            found.extend(_schemas(sub, f"{where}/{key}/{name}"))
    if isinstance(node.get("items"), dict):
        found.extend(_schemas(node["items"], f"{where}/items"))
        if "properties" in node["items"]:
            found.append((f"{where}/items", node["items"]))
    return found


def test_every_field_is_described() -> None:
    assert SCHEMA.get("description")
    missing = [where for where, sub in _schemas(SCHEMA) if not sub.get("description")]
    assert missing == []
    assert len(_schemas(SCHEMA)) > 60
