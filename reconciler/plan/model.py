"""A plan is data: what apply would do, and why, computed by ``reconciler.plan.planner``.

Counts and the summary line are derived from the changes, never tracked while planning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from reconciler.api import Status
from reconciler.config.model import JobSpec
from reconciler.live import LiveJob
from reconciler.plan.selection import Selection
from reconciler.requestmap import RequestsDiff

if TYPE_CHECKING:  # the cost package is imported where a plan's cost is computed or shown
    from reconciler.cost.budget import ChangeCost, PlanCost


class Action(StrEnum):
    """What apply does to one job. Values are stable: they appear in JSON plans."""

    CREATE = "create"  # create a new version (first, retry, or after a finished old one)
    REPLACE = "replace"  # cancel the active current version, then create the new one
    CANCEL = "cancel"  # cancel an active job (then delete it, when ``then_delete``)
    DELETE = "delete"  # delete a job (once it is terminal)

    @property
    def symbol(self) -> str:
        return _SYMBOLS[self]

    @property
    def destroys(self) -> bool:
        """True when the action cancels or deletes a live job (counted by the guards)."""
        return self is not Action.CREATE


_SYMBOLS: dict[Action, str] = {
    Action.CREATE: "+",
    Action.REPLACE: "-/+",
    Action.CANCEL: "x",
    Action.DELETE: "-",
}

# Order in which changes of one job are listed and legend entries shown.
ACTION_ORDER: tuple[Action, ...] = (Action.CREATE, Action.REPLACE, Action.CANCEL, Action.DELETE)


class Reason(StrEnum):
    """Why a change is planned. Values are stable: they appear in JSON plans."""

    NEW = "new"  # desired, no live version
    RETRY = "retry"  # current version FAILED / TIMEOUT_EXCEEDED / CANCELLED, attempts left
    SPEC_CHANGED = "spec_changed"  # desired spec differs from the current version's
    REMOVED = "removed"  # not in the configuration any more
    HISTORY_LIMIT = "history_limit"  # superseded finished version beyond history_limit
    DUPLICATE = "duplicate"  # another version with the same spec is kept (two applies raced)
    # An older version still QUEUED / RUNNING although a newer one exists (a replace cut
    # short, or two applies of different configs raced): cancelled under on_change: replace.
    SUPERSEDED = "superseded"
    DESTROY = "destroy"  # the ``destroy`` command removes every managed job
    REQUESTED = "requested"  # ``--replace NAME``: a new version although the current one is fine

    @property
    def phrase(self) -> str:
        """Short human wording, as the renderers and staleness reasons show it."""
        return _REASON_PHRASES[self]


_REASON_PHRASES: dict[Reason, str] = {
    Reason.NEW: "not created yet",
    Reason.RETRY: "retry",
    Reason.SPEC_CHANGED: "spec changed",
    Reason.REMOVED: "removed from configuration",
    Reason.HISTORY_LIMIT: "old version beyond history_limit",
    Reason.DUPLICATE: "duplicate of the version kept",
    Reason.SUPERSEDED: "superseded by a newer version",
    Reason.DESTROY: "destroy",
    Reason.REQUESTED: "replacement requested",
}


class NoteKind(StrEnum):
    """A job with nothing to do that is still worth a line in the plan."""

    IN_PROGRESS = "in_progress"  # same spec, QUEUED / RUNNING / CANCELLATION_REQUESTED
    DONE = "done"  # same spec, SUCCESS
    WAITING = "waiting"  # spec changed, active, on_change: wait
    EXHAUSTED = "exhausted"  # same spec, failed, attempts used up (a warning)


class GuardKind(StrEnum):
    PREVENT_DESTROY = "prevent_destroy"
    MAX_DESTROY = "max_destroy"
    EMPTY_DESIRED = "empty_desired"
    MAX_COST = "max_cost"  # the estimate is above safety.max_cost, or cannot be checked


@dataclass(frozen=True)
class JobRef:
    """A snapshot of the live job a change or note is about (what the user sees)."""

    id: str
    status: Status
    created_at: int
    spec_digest: str
    attempt: int
    total_requests: int
    completed_requests: int
    succeeded_requests: int
    failed_requests: int

    @classmethod
    def of(cls, job: LiveJob) -> JobRef:
        return cls(
            id=job.id,
            status=job.status,
            created_at=job.created_at,
            spec_digest=job.spec_digest,
            attempt=job.attempt,
            total_requests=job.total_requests,
            completed_requests=job.completed_requests,
            succeeded_requests=job.succeeded_requests,
            failed_requests=job.failed_requests,
        )


PathPart = str | int

_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")
_PATH_TOKEN = re.compile(r'\.([A-Za-z0-9_-]+)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]')


def format_path(parts: tuple[PathPart, ...]) -> str:
    """``("metadata", "team")`` -> ``metadata.team``; ``("inputs", 0)`` -> ``inputs[0]``;
    keys that are not plain words are quoted: ``metadata["a.b"]``."""
    out: list[str] = []
    for i, part in enumerate(parts):
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(part if i == 0 else f".{part}")
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


def parse_path(path: str) -> tuple[PathPart, ...]:
    """The inverse of :func:`format_path`."""
    head = _PLAIN_KEY.match(path)
    if head is None:
        raise ValueError(f"not a field path: {path!r}")
    parts: list[PathPart] = [head.group(0)]
    pos = head.end()
    while pos < len(path):
        token = _PATH_TOKEN.match(path, pos)
        if token is None:
            raise ValueError(f"not a field path: {path!r}")
        word, index, quoted = token.groups()
        if word is not None:
            parts.append(word)
        elif index is not None:
            parts.append(int(index))
        else:
            parts.append(str(json.loads(quoted)))
        pos = token.end()
    return tuple(parts)


@dataclass(frozen=True)
class FieldDiff:
    """One changed field: ``path`` like ``model`` or ``metadata.team`` or ``inputs[0]``.

    ``old`` / ``new`` are JSON values; a missing side is ``None`` with ``added`` /
    ``removed`` telling it apart from an explicit null. A field that is null when unused
    (``inputs``, ``input_files``, ``requests``, ...) counts as missing: switching from
    ``input_files`` to ``inputs`` is one removed and one added field."""

    path: str
    old: Any
    new: Any
    added: bool = False
    removed: bool = False
    # ``requests`` of two inline jobs: the change request by request, when the live job's
    # request map tag tells (None otherwise: only the digests above are known).
    requests: RequestsDiff | None = None
    # ``inputs[N]`` whose file changed: (lines added, lines removed), when the old file's
    # content could be read (``reconciler.plan.linecount``); None otherwise.
    lines: tuple[int, int] | None = None

    @property
    def parts(self) -> tuple[PathPart, ...]:
        return parse_path(self.path)

    @property
    def field(self) -> str:
        """The top-level field changed (``metadata`` for ``metadata.team``)."""
        return str(self.parts[0])


@dataclass(frozen=True)
class Change:
    action: Action
    name: str
    reason: Reason
    live: JobRef | None = None  # the job cancelled / deleted / replaced; None for CREATE
    spec: JobSpec | None = None  # CREATE / REPLACE: the spec to create
    attempt: int | None = None  # CREATE / REPLACE: the attempt number the new job gets
    diffs: tuple[FieldDiff, ...] = ()  # SPEC_CHANGED: what changed, old -> new
    then_delete: bool = False  # CANCEL: delete the job once it is terminal
    # DELETE of a job still CANCELLATION_REQUESTED: wait until it is terminal first.
    await_terminal: bool = False
    # CREATE / REPLACE: idempotency token. The pure planner leaves it None; the shell fills
    # it in (``Plan.with_create_ids``) before saving or applying.
    create_id: str | None = None
    protected: bool = False  # the job has prevent_destroy (a destroying change is blocked)
    # CREATE after an earlier version (RETRY, SPEC_CHANGED): that version, which stays as
    # history (or is deleted by a HISTORY_LIMIT change of the same plan). Shown only;
    # never acted on by the CREATE itself (``live`` stays None for every CREATE).
    previous: JobRef | None = None

    @property
    def destroyed_job_id(self) -> str | None:
        """The live job this change cancels or deletes (counted once by the guards)."""
        if self.action.destroys and self.live is not None:
            return self.live.id
        return None


@dataclass(frozen=True)
class Note:
    name: str
    kind: NoteKind
    live: JobRef
    message: str
    diffs: tuple[FieldDiff, ...] = ()  # WAITING: the change that waits


@dataclass(frozen=True)
class Violation:
    """A safety guard the plan trips; apply refuses (exit 3) while any is present."""

    guard: GuardKind
    message: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    create: int
    replace: int
    cancel: int
    delete: int

    @property
    def total(self) -> int:
        return self.create + self.replace + self.cancel + self.delete

    def line(self) -> str:
        if self.total == 0:
            return "No changes. Live jobs match the configuration."
        return (
            f"Plan: {self.create} to create, {self.replace} to replace, "
            f"{self.cancel} to cancel, {self.delete} to delete."
        )


def cost_key(change: Change) -> str:
    """How a plan's cost names a change: its job name (one create or replace per name)."""
    return change.name


def starts_work(change: Change) -> bool:
    """True for the changes that create a job, and so cost money: create and replace."""
    return change.action in (Action.CREATE, Action.REPLACE) and change.spec is not None


@dataclass(frozen=True)
class Budget:
    """The cost guard's settings the plan was checked with: ``safety.max_cost`` and
    ``--allow-cost`` (None: not set)."""

    max_cost: Decimal | None = None
    allow_cost: Decimal | None = None


@dataclass(frozen=True)
class Targeting:
    """What ``--target`` / ``--exclude`` / ``--replace`` asked for, and what it selected."""

    selection: Selection
    selected: tuple[str, ...]  # job names planned (sorted)
    total: int  # job names known: in the configuration or live
    replaced: tuple[str, ...] = ()  # job names re-run on request (sorted)

    @property
    def limited(self) -> bool:
        """True when only some jobs are planned (``--target`` / ``--exclude``)."""
        return self.selection.limits


@dataclass(frozen=True)
class Plan:
    workspace: str
    changes: tuple[Change, ...] = ()  # sorted by (name, ACTION_ORDER, live job age)
    notes: tuple[Note, ...] = ()  # sorted by name
    violations: tuple[Violation, ...] = ()
    # Free-form details the renderers may show (e.g. foreign jobs ignored); not semantics.
    info: Mapping[str, Any] = field(default_factory=dict)
    targeting: Targeting | None = None  # None: every job planned, none re-run on request
    # Provenance, filled in by the shell (``with_provenance``) and stamped on every job
    # the plan creates: the plan's own id and the config root's git commit (if any).
    plan_id: str | None = None
    commit: str | None = None
    # What the work the plan starts is estimated to cost, and the budget it was checked
    # against: filled in by the shell (``with_cost``); None when the plan creates nothing.
    cost: PlanCost | None = None
    budget: Budget = Budget()

    @property
    def summary(self) -> Summary:
        def count(action: Action) -> int:
            return sum(1 for c in self.changes if c.action is action)

        return Summary(
            create=count(Action.CREATE),
            replace=count(Action.REPLACE),
            cancel=count(Action.CANCEL),
            delete=count(Action.DELETE),
        )

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    @property
    def blocked(self) -> bool:
        return bool(self.violations)

    @property
    def destroyed_job_ids(self) -> frozenset[str]:
        """Live jobs the plan would cancel or delete, each once (replaces included)."""
        return frozenset(i for c in self.changes if (i := c.destroyed_job_id) is not None)

    @property
    def actions_in_use(self) -> tuple[Action, ...]:
        used = {c.action for c in self.changes}
        return tuple(a for a in ACTION_ORDER if a in used)

    def with_create_ids(self, factory: Callable[[], str]) -> Plan:
        """This plan with an idempotency token on every CREATE / REPLACE that lacks one,
        drawn from ``factory`` in change order (the shell passes ``uuid4``; tests a counter).
        Tokens already present are kept, so a saved plan keeps its ids."""
        changes = tuple(
            replace(c, create_id=factory())
            if c.action in (Action.CREATE, Action.REPLACE) and c.create_id is None
            else c
            for c in self.changes
        )
        return replace(self, changes=changes)

    def change_cost(self, change: Change) -> ChangeCost | None:
        """The estimate of one create or replace, when the plan has one."""
        if self.cost is None or not starts_work(change):
            return None
        key = cost_key(change)
        return next((c for c in self.cost.changes if c.key == key), None)

    def with_cost(
        self, cost: PlanCost | None, budget: Budget, violation: Violation | None = None
    ) -> Plan:
        """This plan with its estimate, the budget it was checked against and, when the
        budget blocks it, that guard's violation."""
        violations = self.violations + ((violation,) if violation is not None else ())
        return replace(self, cost=cost, budget=budget, violations=violations)

    def with_provenance(self, *, plan_id: str, commit: str | None) -> Plan:
        """This plan with its id and the commit it was made from (kept when already set,
        so that a saved plan keeps its own)."""
        if self.plan_id is not None:
            return self
        return replace(self, plan_id=plan_id, commit=commit)
