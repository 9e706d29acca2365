"""A plan is data: what apply would do, and why, computed by ``reconciler.plan.planner``.

Counts and the summary line are derived from the changes, never tracked while planning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.api import Status
from reconciler.config.model import JobSpec
from reconciler.live import LiveJob


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


@dataclass(frozen=True)
class FieldDiff:
    """One changed field: ``path`` like ``model`` or ``metadata.team`` or ``inputs[0]``.

    ``old`` / ``new`` are JSON values; a missing side is ``None`` with ``added`` /
    ``removed`` telling it apart from an explicit null."""

    path: str
    old: Any
    new: Any
    added: bool = False
    removed: bool = False


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


@dataclass(frozen=True)
class Plan:
    workspace: str
    changes: tuple[Change, ...] = ()  # sorted by (name, ACTION_ORDER, live job age)
    notes: tuple[Note, ...] = ()  # sorted by name
    violations: tuple[Violation, ...] = ()
    # Free-form details the renderers may show (e.g. foreign jobs ignored); not semantics.
    info: Mapping[str, Any] = field(default_factory=dict)

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
