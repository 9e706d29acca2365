"""Saved plans (``plan --out PLANFILE``, ``apply PLANFILE``) and their staleness check.

A plan file is JSON: the plan (changes with their create ids, notes, violations), every
desired spec it was computed from (inputs by path + sha256, inline requests in full), the
policy, the workspace, the server, a digest of the configuration and the creation time.
It never holds an API key: none is in the plan, and a server URL loses any user-info.

``apply PLANFILE`` re-plans the saved desired specs against fresh live state and refuses
when the changes differ (:func:`stale_reasons`). Applying a plan changes exactly what the
plan relied on (a created job now exists, a cancelled one is cancelling, a deleted one is
gone), so the same file applied a second time is always refused as stale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, TypeVar, assert_never
from urllib.parse import urlsplit, urlunsplit

from reconciler import __version__, fileio, requestmap
from reconciler.api import Status
from reconciler.config.model import (
    JobSpec,
    LocalInput,
    OnChange,
    PriceOverride,
    PromptSource,
    canonical_json,
)
from reconciler.cost.budget import PlanCost, plan_cost_from_json
from reconciler.errors import Location, ReconcilerError, StalePlanError
from reconciler.live import LiveJob
from reconciler.plan.model import (
    Action,
    Budget,
    Change,
    FieldDiff,
    GuardKind,
    JobRef,
    Note,
    NoteKind,
    Plan,
    Reason,
    Targeting,
    Violation,
    cost_key,
    starts_work,
)
from reconciler.plan.planner import Policy, plan
from reconciler.plan.selection import Selection

FORMAT: Final = "reconciler-plan"
FORMAT_VERSION: Final = 1

T = TypeVar("T")


class PlanFileError(ReconcilerError):
    """A plan file that cannot be read: missing, not JSON, another format, or edited."""


@dataclass(frozen=True)
class PlanContext:
    """What a plan was computed from, besides live state."""

    server: str  # "local" or a URL, as resolved by the shell
    config_digest: str  # see config_digest()
    desired: tuple[JobSpec, ...]
    policy: Policy
    created_at: str = ""  # ISO 8601, UTC; "" means "now", filled in by save()
    tool_version: str = __version__
    prices: tuple[tuple[str, PriceOverride], ...] = ()  # prices: the estimate was made with


@dataclass(frozen=True)
class SavedPlan:
    plan: Plan
    context: PlanContext


def config_digest(desired: Sequence[JobSpec], policy: Policy) -> str:
    """A digest of everything in the configuration that planning depends on: each job's
    spec digest and policy fields, and the safety settings."""
    jobs = [
        [s.name, s.digest, s.max_attempts, str(s.on_change), s.prevent_destroy, s.history_limit]
        for s in sorted(desired, key=lambda s: s.name)
    ]
    safety = [policy.max_destroy, sorted(policy.protected), policy.destroy_all]
    return hashlib.sha256(canonical_json([jobs, safety]).encode()).hexdigest()


# -- save / load -------------------------------------------------------------------------


def save(plan: Plan, path: Path | str, *, context: PlanContext) -> None:
    """Write ``plan`` to ``path`` atomically, readable by its owner only (inline requests
    may be private). Every create needs its create id already (``Plan.with_create_ids``):
    the id is what makes applying the saved plan exactly-once."""
    missing = [c.name for c in plan.changes if c.spec is not None and not c.create_id]
    if missing:
        raise ValueError(f"changes without a create id (use Plan.with_create_ids): {missing}")
    specs = {s.name: s for s in context.desired}
    for change in plan.changes:
        if change.spec is not None and specs.get(change.name) != change.spec:
            raise ValueError(f"{change.name}: the spec to create is not in context.desired")
    created_at = context.created_at or datetime.now(UTC).isoformat(timespec="seconds")
    document = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": created_at,
        "tool_version": context.tool_version,
        "workspace": plan.workspace,
        "server": _without_credentials(context.server),
        "config_digest": context.config_digest,
        "policy": _policy_out(context.policy),
        "desired": [_spec_out(s) for s in context.desired],
        "plan": _plan_out(plan),
        "relied_on": _relied_on(plan),
        **_cost_out(plan, context.prices),
    }
    _write_atomically(Path(path), json.dumps(document, indent=1, ensure_ascii=False) + "\n")


def load(path: Path | str) -> SavedPlan:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PlanFileError(f"cannot read plan file {path}: {err.strerror or err}") from err
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise PlanFileError(f"{path} is not a plan file (not JSON: {err})") from err
    r = _Reader(str(path))
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise PlanFileError(f"{path} is not a reconciler plan file")
    version = doc.get("format_version")
    if version != FORMAT_VERSION:
        raise PlanFileError(
            f"{path} has plan format version {version!r}; this reconciler reads version "
            f"{FORMAT_VERSION}. Make the plan again with this version."
        )
    desired = tuple(r.items(doc, "desired", _spec_in))
    specs = {s.name: s for s in desired}
    context = PlanContext(
        server=r.get(doc, "server", str),
        config_digest=r.get(doc, "config_digest", str),
        desired=desired,
        policy=_policy_in(r, r.get(doc, "policy", dict)),
        created_at=r.get(doc, "created_at", str),
        tool_version=r.get(doc, "tool_version", str),
    )
    saved = _plan_in(r, r.get(doc, "plan", dict), specs, workspace=r.get(doc, "workspace", str))
    cost, budget, prices = _cost_in(r, doc)
    # No estimate: a plan made before estimates existed (apply estimates it afresh).
    starting = sorted(cost_key(c) for c in saved.changes if starts_work(c))
    if cost is not None and sorted(c.key for c in cost.changes) != starting:
        raise r.fail("the cost estimate does not cover exactly the plan's creates")
    saved = replace(saved, cost=cost, budget=budget)
    return SavedPlan(plan=saved, context=replace(context, prices=prices))


# -- staleness ---------------------------------------------------------------------------


def replan(saved: SavedPlan, live: Sequence[LiveJob]) -> Plan:
    """The saved desired specs planned again, against fresh live state (pure)."""
    return plan(saved.context.desired, live, saved.context.policy, workspace=saved.plan.workspace)


def stale_reasons(saved: Plan, fresh: Plan) -> list[str]:
    """Why ``saved`` may not be applied as it is: one sentence per job whose changes are
    no longer the same (action, reason, live job, spec, attempt, deletion flags; progress
    counts do not matter). Empty when the saved plan still holds."""
    reasons: list[str] = []
    if saved.workspace != fresh.workspace:
        reasons.append(f"the plan is for workspace {saved.workspace}, not {fresh.workspace}")
    before, after = _by_name(saved.changes), _by_name(fresh.changes)
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name, []), after.get(name, [])
        if sorted(map(_signature, old)) != sorted(map(_signature, new)):
            reasons.append(_explain(name, old, new))
    return reasons


def ensure_fresh(saved: SavedPlan, live: Sequence[LiveJob]) -> None:
    """Raise StalePlanError (exit 4) unless ``saved`` still holds against ``live``."""
    reasons = stale_reasons(saved.plan, replan(saved, live))
    if reasons:
        lines = "\n".join(f"  - {r}" for r in reasons)
        raise StalePlanError(
            "Saved plan is stale: live jobs changed since it was made (or it was already "
            f"applied).\n{lines}\nRun `reconciler plan` again and review the new plan."
        )


_Signature = tuple[str, str, str, str, str, bool, bool]


def _signature(c: Change) -> _Signature:
    return (
        str(c.action),
        str(c.reason),
        c.live.id if c.live else "",
        c.spec.digest if c.spec else "",
        str(c.attempt),
        c.then_delete,
        c.await_terminal,
    )


def _by_name(changes: Sequence[Change]) -> dict[str, list[Change]]:
    out: dict[str, list[Change]] = {}
    for change in changes:
        out.setdefault(change.name, []).append(change)
    return out


def _explain(name: str, old: Sequence[Change], new: Sequence[Change]) -> str:
    same_job = (
        len(old) == len(new) == 1
        and old[0].live is not None
        and new[0].live is not None
        and old[0].live.id == new[0].live.id
    )
    before = [_describe(c) for c in old]
    after = [_describe(c, target="it" if same_job else None) for c in new]
    if before == after or (same_job and _describe(old[0]) == _describe(new[0])):
        before = [f"{_describe(c)} ({c.reason.phrase})" for c in old]
        after = [
            f"{_describe(c, target='it' if same_job else None)} ({c.reason.phrase})" for c in new
        ]
    return f"{name}: the plan would {_join(before)}, now it would {_join(after)}"


def _join(phrases: Sequence[str]) -> str:
    return " and ".join(phrases) if phrases else "do nothing"


def _describe(change: Change, *, target: str | None = None) -> str:
    job = target or (f"job {change.live.id}" if change.live else "the job")
    match change.action:
        case Action.CREATE:
            return f"create a new job (attempt {change.attempt})"
        case Action.REPLACE:
            then = ", then delete it" if change.then_delete else ""
            return f"replace {job}{then}"
        case Action.CANCEL:
            then = ", then delete it" if change.then_delete else ""
            return f"cancel {job}{then}"
        case Action.DELETE:
            once = " once cancelled" if change.await_terminal else ""
            return f"delete {job}{once}"
        case _:
            assert_never(change.action)


# -- writing -----------------------------------------------------------------------------


def _without_credentials(server: str) -> str:
    """A server URL as it may be written down: no user-info, query or fragment."""
    parts = urlsplit(server)
    if not parts.scheme or not parts.netloc:
        return server
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _write_atomically(path: Path, text: str) -> None:
    # Whole or not at all, created exclusively, readable by its owner only; an OSError
    # becomes a one-line WriteError naming the plan file.
    data = text.encode("utf-8")
    fileio.write_atomically(path, lambda out: out.write(data), what="plan file", mode=0o600)


def _policy_out(policy: Policy) -> dict[str, Any]:
    return {
        "max_destroy": policy.max_destroy,
        "allow_destroy": policy.allow_destroy,
        "protected": sorted(policy.protected),
        "destroy_all": policy.destroy_all,
        "selection": _selection_out(policy.selection),
    }


def _selection_out(selection: Selection) -> dict[str, list[str]]:
    return {
        "targets": list(selection.targets),
        "excludes": list(selection.excludes),
        "replace": list(selection.replace),
    }


def _spec_out(spec: JobSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "digest": spec.digest,
        "endpoint": spec.endpoint,
        "model": spec.model,
        "agent_id": spec.agent_id,
        "inputs": [
            {"path": i.path, "sha256": i.sha256, "size": i.size, "lines": i.lines}
            for i in spec.inputs
        ],
        "input_files": list(spec.input_files),
        "requests": spec.requests,
        "metadata": spec.metadata_dict,
        "timeout_hours": spec.timeout_hours,
        "max_attempts": spec.max_attempts,
        "on_change": str(spec.on_change),
        "prevent_destroy": spec.prevent_destroy,
        "history_limit": spec.history_limit,
        "source": [spec.source.file, spec.source.line, spec.source.column],
        **({} if spec.prompts is None else {"prompts": _prompts_out(spec.prompts)}),
    }


def _prompts_out(prompts: PromptSource) -> dict[str, Any]:
    rows = prompts.rows
    return {
        "rows": {"path": rows.path, "sha256": rows.sha256, "size": rows.size, "lines": rows.lines},
        "format": prompts.format,
        "custom_id": prompts.custom_id,
        "body": prompts.body,
    }


def _prompts_in(r: _Reader, raw: dict[str, Any]) -> PromptSource:
    return PromptSource(
        rows=_input_in(r, r.get(raw, "rows", dict)),
        format=r.get(raw, "format", str),
        custom_id=r.get(raw, "custom_id", str),
        body_json=canonical_json(r.get(raw, "body", dict)),
    )


def _ref_out(ref: JobRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {
        "id": ref.id,
        "status": str(ref.status),
        "created_at": ref.created_at,
        "spec_digest": ref.spec_digest,
        "attempt": ref.attempt,
        "total_requests": ref.total_requests,
        "completed_requests": ref.completed_requests,
        "succeeded_requests": ref.succeeded_requests,
        "failed_requests": ref.failed_requests,
    }


def _diff_out(diff: FieldDiff) -> dict[str, Any]:
    out = {
        "path": diff.path,
        "old": diff.old,
        "new": diff.new,
        "added": diff.added,
        "removed": diff.removed,
    }
    if diff.requests is not None:
        out["requests"] = requestmap.to_json(diff.requests)
    if diff.lines is not None:
        out["lines"] = list(diff.lines)
    return out


def _plan_out(p: Plan) -> dict[str, Any]:
    return {
        "changes": [
            {
                "action": str(c.action),
                "name": c.name,
                "reason": str(c.reason),
                "live": _ref_out(c.live),
                "previous": _ref_out(c.previous),
                # The full spec is in "desired"; the digest pins which one.
                "spec_digest": c.spec.digest if c.spec else None,
                "attempt": c.attempt,
                "diffs": [_diff_out(d) for d in c.diffs],
                "then_delete": c.then_delete,
                "await_terminal": c.await_terminal,
                "create_id": c.create_id,
                "protected": c.protected,
            }
            for c in p.changes
        ],
        "notes": [
            {
                "name": n.name,
                "kind": str(n.kind),
                "live": _ref_out(n.live),
                "message": n.message,
                "diffs": [_diff_out(d) for d in n.diffs],
            }
            for n in p.notes
        ],
        "violations": [
            {"guard": str(v.guard), "message": v.message, "names": list(v.names)}
            for v in p.violations
        ],
        "info": dict(p.info),
        "targeting": _targeting_out(p.targeting),
        "plan_id": p.plan_id,
        "commit": p.commit,
    }


def _targeting_out(t: Targeting | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {
        "selection": _selection_out(t.selection),
        "selected": list(t.selected),
        "total": t.total,
        "replaced": list(t.replaced),
    }


def _relied_on(p: Plan) -> list[dict[str, Any]]:
    """Every live job the plan looked at, for people reading the file."""
    seen: dict[str, dict[str, Any]] = {}
    refs = [(c.name, c.live) for c in p.changes] + [(c.name, c.previous) for c in p.changes]
    refs += [(n.name, n.live) for n in p.notes]
    for name, ref in refs:
        if ref is not None:
            seen[ref.id] = {"id": ref.id, "name": name, "status": str(ref.status)}
    return [seen[k] for k in sorted(seen)]


_PRICE_FIELDS: Final = (
    "input",
    "output",
    "per_1000_pages",
    "per_1000_annotated_pages",
    "per_minute",
)


def _amount_out(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _cost_out(p: Plan, prices: Sequence[tuple[str, PriceOverride]]) -> dict[str, Any]:
    """The estimate the plan was reviewed with, the budget it was checked against and the
    prices: it was priced with (amounts as decimal strings)."""
    return {
        "cost": None if p.cost is None else p.cost.to_json(),
        "budget": {
            "max_cost": _amount_out(p.budget.max_cost),
            "allow_cost": _amount_out(p.budget.allow_cost),
        },
        "prices": {
            model: {k: str(v) for k in _PRICE_FIELDS if (v := getattr(o, k)) is not None}
            for model, o in prices
        },
    }


# -- reading -----------------------------------------------------------------------------


class _Reader:
    """Typed access to the loaded JSON, failing with the file and the key at fault."""

    def __init__(self, path: str) -> None:
        self.path = path

    def fail(self, what: str) -> PlanFileError:
        return PlanFileError(f"{self.path} is damaged or was edited: {what}")

    def get(self, obj: Mapping[str, Any], key: str, kind: type[T]) -> T:
        v = obj.get(key)
        if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
            raise self.fail(f"{key!r} should be {kind.__name__}, found {type(v).__name__}")
        return v

    def opt(self, obj: Mapping[str, Any], key: str, kind: type[T]) -> T | None:
        return None if obj.get(key) is None else self.get(obj, key, kind)

    def items(
        self,
        obj: Mapping[str, Any],
        key: str,
        item: Callable[[_Reader, dict[str, Any]], T],
    ) -> list[T]:
        out = []
        for raw in self.get(obj, key, list):
            if not isinstance(raw, dict):
                raise self.fail(f"an item of {key!r} is not an object")
            out.append(item(self, raw))
        return out

    def strs(self, obj: Mapping[str, Any], key: str) -> tuple[str, ...]:
        values = self.get(obj, key, list)
        if not all(isinstance(v, str) for v in values):
            raise self.fail(f"{key!r} should hold strings")
        return tuple(values)

    def enum(self, obj: Mapping[str, Any], key: str, kind: Callable[[str], T]) -> T:
        raw = self.get(obj, key, str)
        try:
            return kind(raw)
        except ValueError:
            raise self.fail(f"unknown {key} {raw!r}") from None


def _amount_in(r: _Reader, raw: Mapping[str, Any], key: str) -> Decimal | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise r.fail(f"{key!r} should be an amount written as a string")
    try:
        amount = Decimal(value)
    except ArithmeticError:
        raise r.fail(f"{key!r} is not an amount: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise r.fail(f"{key!r} is not an amount: {value!r}")
    return amount


def _cost_in(
    r: _Reader, doc: Mapping[str, Any]
) -> tuple[PlanCost | None, Budget, tuple[tuple[str, PriceOverride], ...]]:
    """The estimate, budget and prices of a plan file; strict (the file is untrusted):
    the estimate through ``plan_cost_from_json``, which recomputes its total."""
    cost = None
    if doc.get("cost") is not None:
        try:
            cost = plan_cost_from_json(doc["cost"])
        except ValueError as err:
            raise r.fail(str(err)) from None
    raw_budget = r.opt(doc, "budget", dict) or {}
    budget = Budget(
        max_cost=_amount_in(r, raw_budget, "max_cost"),
        allow_cost=_amount_in(r, raw_budget, "allow_cost"),
    )
    prices = []
    for model, raw in sorted((r.opt(doc, "prices", dict) or {}).items()):
        if not isinstance(raw, dict) or not set(raw) <= set(_PRICE_FIELDS):
            raise r.fail(f"the prices of {model!r} should be an object of prices")
        prices.append(
            (
                model,
                PriceOverride(
                    input=_amount_in(r, raw, "input"),
                    output=_amount_in(r, raw, "output"),
                    per_1000_pages=_amount_in(r, raw, "per_1000_pages"),
                    per_1000_annotated_pages=_amount_in(r, raw, "per_1000_annotated_pages"),
                    per_minute=_amount_in(r, raw, "per_minute"),
                ),
            )
        )
    return cost, budget, tuple(prices)


def _policy_in(r: _Reader, raw: dict[str, Any]) -> Policy:
    selection = r.opt(raw, "selection", dict)
    return Policy(
        max_destroy=r.get(raw, "max_destroy", int),
        allow_destroy=r.opt(raw, "allow_destroy", int),
        protected=frozenset(r.strs(raw, "protected")),
        destroy_all=r.get(raw, "destroy_all", bool),
        selection=Selection() if selection is None else _selection_in(r, selection),
    )


def _selection_in(r: _Reader, raw: dict[str, Any]) -> Selection:
    return Selection(
        targets=r.strs(raw, "targets"),
        excludes=r.strs(raw, "excludes"),
        replace=r.strs(raw, "replace"),
    )


def _targeting_in(r: _Reader, raw: dict[str, Any] | None) -> Targeting | None:
    if raw is None:
        return None
    total = r.get(raw, "total", int)
    return Targeting(
        selection=_selection_in(r, r.get(raw, "selection", dict)),
        selected=r.strs(raw, "selected"),
        total=total,
        replaced=r.strs(raw, "replaced"),
    )


def _input_in(r: _Reader, raw: dict[str, Any]) -> LocalInput:
    return LocalInput(
        path=r.get(raw, "path", str),
        sha256=r.get(raw, "sha256", str),
        size=r.get(raw, "size", int),
        lines=r.get(raw, "lines", int),
    )


def _spec_in(r: _Reader, raw: dict[str, Any]) -> JobSpec:
    requests = raw.get("requests")
    if requests is not None and not isinstance(requests, list):
        raise r.fail("'requests' should be a list")
    metadata = r.get(raw, "metadata", dict)
    if not all(isinstance(v, str) for v in metadata.values()):
        raise r.fail("'metadata' values should be strings")
    source = r.get(raw, "source", list)
    if len(source) != 3 or not isinstance(source[0], str):
        raise r.fail("'source' should be [file, line, column]")
    spec = JobSpec(
        name=r.get(raw, "name", str),
        endpoint=r.get(raw, "endpoint", str),
        model=r.opt(raw, "model", str),
        agent_id=r.opt(raw, "agent_id", str),
        inputs=tuple(r.items(raw, "inputs", _input_in)),
        input_files=r.strs(raw, "input_files"),
        requests_json=None if requests is None else canonical_json(requests),
        metadata=tuple(sorted(metadata.items())),
        timeout_hours=r.get(raw, "timeout_hours", int),
        max_attempts=r.get(raw, "max_attempts", int),
        on_change=r.enum(raw, "on_change", OnChange),
        prevent_destroy=r.get(raw, "prevent_destroy", bool),
        history_limit=r.opt(raw, "history_limit", int),
        prompts=None if raw.get("prompts") is None else _prompts_in(r, r.get(raw, "prompts", dict)),
        source=Location(source[0], int(source[1]), int(source[2])),
    )
    if spec.digest != r.get(raw, "digest", str):
        raise r.fail(f"the spec of {spec.name} does not match its digest")
    return spec


def _ref_in(r: _Reader, raw: Mapping[str, Any] | None) -> JobRef | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise r.fail("a live job reference is not an object")
    return JobRef(
        id=r.get(raw, "id", str),
        status=r.enum(raw, "status", Status),
        created_at=r.get(raw, "created_at", int),
        spec_digest=r.get(raw, "spec_digest", str),
        attempt=r.get(raw, "attempt", int),
        total_requests=r.get(raw, "total_requests", int),
        completed_requests=r.get(raw, "completed_requests", int),
        succeeded_requests=r.get(raw, "succeeded_requests", int),
        failed_requests=r.get(raw, "failed_requests", int),
    )


def _diff_in(r: _Reader, raw: dict[str, Any]) -> FieldDiff:
    detail = None
    if raw.get("requests") is not None:
        try:
            detail = requestmap.from_json(raw["requests"])
        except ValueError as err:
            raise r.fail(f"a requests diff: {err}") from None
    lines = None
    if raw.get("lines") is not None:
        pair = r.get(raw, "lines", list)
        if len(pair) != 2 or not all(type(n) is int and n >= 0 for n in pair):
            raise r.fail("'lines' should be two counts")
        lines = (pair[0], pair[1])
    return FieldDiff(
        path=r.get(raw, "path", str),
        old=raw.get("old"),
        new=raw.get("new"),
        added=r.get(raw, "added", bool),
        removed=r.get(raw, "removed", bool),
        requests=detail,
        lines=lines,
    )


def _plan_in(
    r: _Reader, body: dict[str, Any], specs: Mapping[str, JobSpec], *, workspace: str
) -> Plan:
    def change(r: _Reader, raw: dict[str, Any]) -> Change:
        name = r.get(raw, "name", str)
        digest = r.opt(raw, "spec_digest", str)
        spec = None
        if digest is not None:
            spec = specs.get(name)
            if spec is None or spec.digest != digest:
                raise r.fail(f"the spec to create for {name} is missing")
        return Change(
            action=r.enum(raw, "action", Action),
            name=name,
            reason=r.enum(raw, "reason", Reason),
            live=_ref_in(r, raw.get("live")),
            spec=spec,
            attempt=r.opt(raw, "attempt", int),
            diffs=tuple(r.items(raw, "diffs", _diff_in)),
            then_delete=r.get(raw, "then_delete", bool),
            await_terminal=r.get(raw, "await_terminal", bool),
            create_id=r.opt(raw, "create_id", str),
            protected=r.get(raw, "protected", bool),
            previous=_ref_in(r, raw.get("previous")),
        )

    def note(r: _Reader, raw: dict[str, Any]) -> Note:
        live = _ref_in(r, r.get(raw, "live", dict))
        assert live is not None
        return Note(
            name=r.get(raw, "name", str),
            kind=r.enum(raw, "kind", NoteKind),
            live=live,
            message=r.get(raw, "message", str),
            diffs=tuple(r.items(raw, "diffs", _diff_in)),
        )

    def violation(r: _Reader, raw: dict[str, Any]) -> Violation:
        return Violation(
            guard=r.enum(raw, "guard", GuardKind),
            message=r.get(raw, "message", str),
            names=r.strs(raw, "names"),
        )

    return Plan(
        workspace=workspace,
        changes=tuple(r.items(body, "changes", change)),
        notes=tuple(r.items(body, "notes", note)),
        violations=tuple(r.items(body, "violations", violation)),
        info=r.get(body, "info", dict),
        targeting=_targeting_in(r, r.opt(body, "targeting", dict)),
        plan_id=r.opt(body, "plan_id", str),
        commit=r.opt(body, "commit", str),
    )
