"""The JSON view of a plan: a versioned document for tools (``plan --format json``).

Described field by field by ``schemas/plan.schema.json``. ``format_version`` changes only
when a field is removed or changes meaning; new fields may appear in any version. The
inline requests themselves are never included (they can be large, and they are data, not
plan): a spec shows their count and the digest of the whole spec.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final

from reconciler import requestmap
from reconciler.config.model import JobSpec
from reconciler.plan.model import (
    Change,
    FieldDiff,
    JobRef,
    Note,
    Plan,
    Targeting,
    Violation,
    cost_key,
    starts_work,
)
from reconciler.render.common import headline, note_headline, targeting_line
from reconciler.render.cost import change_line, cost_notes, total_line
from reconciler.render.safe import json_text

FORMAT_VERSION: Final = 1


def _amount(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _costs(plan: Plan) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]]]:
    """The plan's ``cost`` object and each change's, by key (amounts as decimal strings)."""
    budget = {
        "max_cost": _amount(plan.budget.max_cost),
        "allow_cost": _amount(plan.budget.allow_cost),
    }
    if plan.cost is None:
        return None, {}
    data = plan.cost.to_json()
    default = plan.cost.default_output_tokens
    per_change = {
        entry["key"]: {**entry, "text": change_line(c, default)}
        for entry, c in zip(data.pop("changes"), plan.cost.changes, strict=True)
    }
    total = {
        **data,
        "unread": list(plan.cost.unread),
        "budget": budget,
        "notes": list(cost_notes(plan)),
        "text": total_line(plan.cost),
    }
    return total, per_change


def render(plan: Plan) -> str:
    # Raw characters json.dumps keeps (DEL, C1, bidi controls) become \u escapes: the same
    # document, safe on a terminal.
    return json_text(json.dumps(document(plan), indent=2, ensure_ascii=False)) + "\n"


def document(plan: Plan) -> dict[str, Any]:
    summary = plan.summary
    cost, per_change = _costs(plan)
    return {
        "format_version": FORMAT_VERSION,
        "workspace": plan.workspace,
        "has_changes": plan.has_changes,
        "blocked": plan.blocked,
        "summary": {
            "create": summary.create,
            "replace": summary.replace,
            "cancel": summary.cancel,
            "delete": summary.delete,
            "total": summary.total,
            "destroyed_jobs": len(plan.destroyed_job_ids),
            "text": summary.line(),
        },
        "targeting": _targeting(plan.targeting),
        "plan_id": plan.plan_id,
        "commit": plan.commit,
        "changes": [_change(c, per_change) for c in plan.changes],
        "notes": [_note(n) for n in plan.notes],
        "violations": [_violation(v) for v in plan.violations],
        "cost": cost,
    }


def _targeting(t: Targeting | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "targets": list(t.selection.targets),
        "excludes": list(t.selection.excludes),
        "replace": list(t.selection.replace),
        "limited": t.limited,
        "selected": len(t.selected),
        "total": t.total,
        "jobs": list(t.selected),
        "replaced": list(t.replaced),
        "text": targeting_line(t),
    }


def _change(change: Change, costs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "action": str(change.action),
        "symbol": change.action.symbol,
        "name": change.name,
        "reason": str(change.reason),
        "description": headline(change),
        "live": _ref(change.live),
        "previous": _ref(change.previous),
        "spec": _spec(change.spec),
        "attempt": change.attempt,
        "diffs": [_diff(d) for d in change.diffs],
        "then_delete": change.then_delete,
        "await_terminal": change.await_terminal,
        "create_id": change.create_id,
        "protected": change.protected,
        "cost": costs.get(cost_key(change)) if starts_work(change) else None,
    }


def _note(note: Note) -> dict[str, Any]:
    return {
        "kind": str(note.kind),
        "name": note.name,
        "description": note_headline(note),
        "message": note.message,
        "live": _ref(note.live),
        "diffs": [_diff(d) for d in note.diffs],
    }


def _violation(violation: Violation) -> dict[str, Any]:
    return {
        "guard": str(violation.guard),
        "message": violation.message,
        "names": list(violation.names),
    }


def _ref(ref: JobRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {
        "id": ref.id,
        "status": str(ref.status),
        "created_at": ref.created_at,
        "spec_digest": ref.spec_digest or None,
        "attempt": ref.attempt,
        "progress": {
            "total": ref.total_requests,
            "completed": ref.completed_requests,
            "succeeded": ref.succeeded_requests,
            "failed": ref.failed_requests,
        },
    }


def _spec(spec: JobSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    if spec.inputs:
        source = "inputs"
    elif spec.requests_json is not None:
        source = "requests"
    elif spec.prompts is not None:
        source = "prompts"
    else:
        source = "input_files"
    return {
        "digest": spec.digest,
        "endpoint": spec.endpoint,
        "model": spec.model,
        "agent_id": spec.agent_id,
        "input_source": source,
        "inputs": [
            {"path": i.path, "sha256": i.sha256, "size": i.size, "lines": i.lines}
            for i in spec.inputs
        ],
        "input_files": list(spec.input_files),
        "request_count": spec.request_count,
        "metadata": spec.metadata_dict,
        "timeout_hours": spec.timeout_hours,
        "max_attempts": spec.max_attempts,
        "on_change": str(spec.on_change),
        "prevent_destroy": spec.prevent_destroy,
        "history_limit": spec.history_limit,
    }


def _diff(diff: FieldDiff) -> dict[str, Any]:
    if diff.added:
        kind = "add"
    elif diff.removed:
        kind = "remove"
    else:
        kind = "update"
    out = {
        "path": diff.path,
        "parts": list(diff.parts),
        "change": kind,
        "old": diff.old,
        "new": diff.new,
    }
    if diff.requests is not None:
        out["requests"] = requestmap.to_json(diff.requests)
    if diff.lines is not None:
        out["lines"] = {"added": diff.lines[0], "removed": diff.lines[1]}
    return out
