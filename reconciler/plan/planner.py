"""The planner: ``plan(desired, live, policy) -> Plan``, a pure function of plain data.

It implements the table of DESIGN.md section 4. Per job name, the live versions (oldest
first) are split into:

- the **current version**: the newest version, except after two applies raced. Among the
  newest versions that share the newest version's spec (the trailing *run* of that spec),
  the oldest that is QUEUED, RUNNING or SUCCESS is current, so that a duplicate we cancel
  (CANCELLATION_REQUESTED, then CANCELLED) is never mistaken for the current version and
  "retried" by the next plan. With none of those in the run, the newest version is current.
- **duplicates**: versions of the run newer than the current one. Active ones are
  cancelled then deleted, ones being cancelled are deleted once terminal, failed or
  cancelled ones are deleted (what is left of an interrupted duplicate cleanup). A
  successful duplicate has results worth keeping: it is kept as history.
- **older versions**: history, except one still QUEUED / RUNNING (a replace cut short, or
  two applies of different configs raced): it is cancelled under ``on_change: replace``
  and left to finish under ``wait``; it becomes history once it ends.

History is counted as it will be *after* this plan: a version this plan supersedes (the
current version of a CREATE or REPLACE, a superseded version it cancels) is history too,
so ``history_limit`` is honoured by this plan, not the next one. A version being cancelled
counts as history (it is going away); beyond the limit it is deleted once terminal.

Then the guards turn the destroying changes into Violations. Nothing here does I/O.
"""

from __future__ import annotations

import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Final, assert_never

from reconciler import tags
from reconciler.api import Status
from reconciler.config.model import JobSpec, OnChange
from reconciler.live import LiveJob
from reconciler.plan.diff import field_diffs, spec_pseudo_diff, with_request_detail
from reconciler.plan.model import (
    ACTION_ORDER,
    Action,
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
)
from reconciler.plan.selection import Selection, resolve

# A version in one of these states can be the current version of a raced run.
_KEEPABLE: Final = frozenset({Status.QUEUED, Status.RUNNING, Status.SUCCESS})
_RUNNING: Final = frozenset({Status.QUEUED, Status.RUNNING})
_ACTION_RANK: Final = {action: i for i, action in enumerate(ACTION_ORDER)}
_NO_LIVE_KEY: Final = (0, 0, "")
_LISTED: Final = 3  # job ids spelled out in one violation message


@dataclass(frozen=True)
class Policy:
    """The safety settings a plan is checked against (config ``safety:`` plus flags)."""

    max_destroy: int = 10
    allow_destroy: int | None = None  # --allow-destroy=N: accept exactly N destroyed jobs
    protected: frozenset[str] = frozenset()  # names with prevent_destroy in the config
    # The ``destroy`` command: every managed job goes, desired specs only count for
    # prevent_destroy, and the empty-desired guard does not apply.
    destroy_all: bool = False
    # --target / --exclude / --replace: only the selected job names are planned (the guards
    # count only what this plan does); the replaced ones get a new version.
    selection: Selection = field(default_factory=Selection)


def plan(
    desired: Sequence[JobSpec], live: Sequence[LiveJob], policy: Policy, *, workspace: str
) -> Plan:
    """What apply would do to make ``live`` match ``desired`` in ``workspace``.

    ``live`` may hold jobs of other workspaces: they are ignored (never acted on, never
    counted). Job names in ``desired`` must be unique.
    """
    with _cyclic_gc_paused():
        return _plan(desired, live, policy, workspace=workspace)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Planning allocates a few small objects per job, none of them in a reference cycle
    (reference counting frees them). At 100,000 jobs that is enough allocation for the
    cyclic collector to re-scan the whole heap — desired and live state — during the
    plan, which made plan() 2x slower than its linear cost. Cycles created meanwhile
    (e.g. by deepdiff) are collected once it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _plan(
    desired: Sequence[JobSpec], live: Sequence[LiveJob], policy: Policy, *, workspace: str
) -> Plan:
    specs: dict[str, JobSpec] = {}
    for wanted in desired:
        if wanted.name in specs:
            raise ValueError(f"duplicate job name in desired state: {wanted.name!r}")
        specs[wanted.name] = wanted

    # Each id once (a later copy is fresher, as in live.collect), then oldest first.
    by_id = {job.id: job for job in live if job.workspace == workspace}
    groups: dict[str, list[LiveJob]] = {}
    for one in sorted(by_id.values(), key=lambda j: j.sort_key):
        groups.setdefault(one.name, []).append(one)

    protected = policy.protected | {s.name for s in desired if s.prevent_destroy}
    keyed: list[tuple[tuple[str, int, tuple[int, int, str]], Change]] = []
    notes: list[Note] = []
    selected = resolve(policy.selection, specs.keys(), groups.keys())
    for name in sorted(selected.names):
        versions = groups.get(name, [])
        spec = None if policy.destroy_all else specs.get(name)
        job_plan = _JobPlan()
        if spec is None:
            _plan_absent(
                job_plan, versions, Reason.DESTROY if policy.destroy_all else Reason.REMOVED
            )
        else:
            _plan_present(job_plan, spec, versions, rerun=name in selected.replace)
        is_protected = name in protected
        for job, planned in job_plan.changes:
            change = (
                replace(planned, protected=True)
                if is_protected and planned.action.destroys
                else planned
            )
            live_key = job.sort_key if job is not None else _NO_LIVE_KEY
            keyed.append(((name, _ACTION_RANK[change.action], live_key), change))
        if job_plan.note is not None:
            notes.append(job_plan.note)

    keyed.sort(key=lambda item: item[0])
    changes = tuple(change for _, change in keyed)
    managed = sum(len(groups.get(name, ())) for name in selected.names)
    violations = _guards(
        changes, policy, workspace=workspace, desired_count=len(specs), managed=managed
    )
    targeting = None
    if policy.selection.given:
        targeting = Targeting(
            policy.selection,
            selected=tuple(sorted(selected.names)),
            total=selected.total,
            replaced=tuple(sorted(selected.replace)),
        )
    return Plan(
        workspace=workspace,
        changes=changes,
        notes=tuple(notes),
        violations=violations,
        targeting=targeting,
    )


@dataclass
class _JobPlan:
    """What one job name becomes; each live version gets at most one change."""

    changes: list[tuple[LiveJob | None, Change]] = field(default_factory=list)
    note: Note | None = None

    def add(self, job: LiveJob | None, change: Change) -> None:
        self.changes.append((job, change))


def _plan_absent(out: _JobPlan, versions: Sequence[LiveJob], reason: Reason) -> None:
    for job in versions:
        out.add(job, _removal(job, reason))


def _removal(job: LiveJob, reason: Reason) -> Change:
    """Make a live job go away: cancel then delete it, or delete it (once terminal)."""
    name, ref = job.name, JobRef.of(job)
    if job.status in _RUNNING:
        return Change(Action.CANCEL, name, reason, live=ref, then_delete=True)
    if job.status is Status.CANCELLATION_REQUESTED:
        # Already going away: a second cancel would change nothing.
        return Change(Action.DELETE, name, reason, live=ref, await_terminal=True)
    return Change(Action.DELETE, name, reason, live=ref)


def _plan_present(
    out: _JobPlan, spec: JobSpec, versions: Sequence[LiveJob], *, rerun: bool = False
) -> None:
    if not versions:
        out.add(None, Change(Action.CREATE, spec.name, Reason.NEW, spec=spec, attempt=1))
        return

    if len(versions) == 1:  # by far the most common case: no history, no duplicates
        successor = _current_change(out, spec, versions[0], rerun=rerun)
        if successor is not None:
            _supersede_only_version(out, spec, versions[0], successor)
        return

    # The trailing run of versions sharing the newest version's spec. A re-run asked for
    # with --replace starts a run of its own: the versions it re-ran are history, not
    # copies of it to cancel as duplicates.
    newest_digest = versions[-1].spec_digest
    start = len(versions) - 1
    while (
        start > 0
        and versions[start - 1].spec_digest == newest_digest
        and not _reruns_earlier(versions, start)
    ):
        start -= 1
    current_at = next(
        (i for i in range(start, len(versions)) if versions[i].status in _KEEPABLE),
        len(versions) - 1,
    )
    current = versions[current_at]

    # An older version with exactly the desired spec may still be running, behind newer
    # versions of other specs (a revert while on_change: wait let it run). It already
    # computes what is wanted: adopt it rather than start (and pay for) a copy.
    # Under --replace that version is the one re-run: it is what is in effect.
    adopted = None
    if current.spec_digest != spec.digest:
        adopted = next(
            (
                job
                for job in reversed(versions[:current_at])
                if job.spec_digest == spec.digest and job.status in _RUNNING
            ),
            None,
        )

    # Versions that will be history once this plan is applied, oldest first, each with
    # the change this plan already makes to it (None when it is left as it is).
    history: list[tuple[LiveJob, Change | None]] = []

    for job in versions[:current_at]:
        if job is not adopted:
            _supersede(history, spec, job)

    for job in versions[current_at + 1 :]:
        if job.status is Status.SUCCESS:
            history.append((job, None))
        else:
            out.add(job, _removal(job, Reason.DUPLICATE))

    if adopted is not None and rerun:
        rerun_change = _current_change(out, spec, adopted, rerun=True)
        assert rerun_change is not None and rerun_change.action is Action.REPLACE
        history.append((adopted, rerun_change))
        _supersede(history, spec, current)
    elif adopted is not None:
        out.note = Note(
            spec.name,
            NoteKind.IN_PROGRESS,
            JobRef.of(adopted),
            f"{_in_progress_message(adopted)}; it is an earlier version with the desired "
            f"spec, adopted instead of creating a copy",
        )
        _supersede(history, spec, current)
    elif (successor := _current_change(out, spec, current, rerun=rerun)) is not None:
        history.append((current, successor if successor.action is Action.REPLACE else None))
        if successor.action is Action.CREATE:
            out.add(None, successor)

    history.sort(key=lambda item: item[0].sort_key)
    keep = len(history) if spec.history_limit is None else spec.history_limit
    excess = history[: max(0, len(history) - keep)]
    excess_ids = {job.id for job, _ in excess}
    for job, change in history:
        if job.id in excess_ids:
            if change is not None:
                # This plan cancels it already: delete it once the cancel is through.
                out.add(job, replace(change, then_delete=True))
            else:
                out.add(job, _history_delete(job))
        elif change is not None:
            out.add(job, change)


def _reruns_earlier(versions: Sequence[LiveJob], at: int) -> bool:
    """Whether ``versions[at]`` was created by --replace to re-run an earlier version."""
    rerun_of = versions[at].rerun_of
    return rerun_of is not None and any(v.id == rerun_of for v in versions[:at])


def _supersede(history: list[tuple[LiveJob, Change | None]], spec: JobSpec, job: LiveJob) -> None:
    """Record ``job``, a version that is not (or no longer) current, as history: cancelled
    first when still running under on_change: replace; under wait it may finish, and is
    history once it has."""
    if job.status in _RUNNING:
        if spec.on_change is OnChange.REPLACE:
            cancel = Change(Action.CANCEL, spec.name, Reason.SUPERSEDED, live=JobRef.of(job))
            history.append((job, cancel))
    else:
        history.append((job, None))


def _supersede_only_version(
    out: _JobPlan, spec: JobSpec, current: LiveJob, successor: Change
) -> None:
    """The general case's history accounting, for a job with one live version."""
    beyond_limit = spec.history_limit == 0
    if successor.action is Action.REPLACE:
        out.add(current, replace(successor, then_delete=True) if beyond_limit else successor)
        return
    out.add(None, successor)
    if beyond_limit:
        out.add(current, _history_delete(current))


def _history_delete(job: LiveJob) -> Change:
    return Change(
        Action.DELETE,
        job.name,
        Reason.HISTORY_LIMIT,
        live=JobRef.of(job),
        await_terminal=not job.is_terminal,
    )


def _current_change(
    out: _JobPlan, spec: JobSpec, current: LiveJob, *, rerun: bool = False
) -> Change | None:
    """What becomes of the current version: the CREATE or REPLACE that supersedes it, or
    None with a note when it stays current. ``rerun`` (--replace): a new version (attempt
    1) even though this one is fine; a running one is replaced whatever on_change says."""
    ref = JobRef.of(current)
    if current.spec_digest == spec.digest and rerun:
        if current.status in _RUNNING:
            return Change(
                Action.REPLACE, spec.name, Reason.REQUESTED, live=ref, spec=spec, attempt=1
            )
        return Change(
            Action.CREATE, spec.name, Reason.REQUESTED, spec=spec, attempt=1, previous=ref
        )
    if current.spec_digest == spec.digest:
        if current.status.is_active:
            out.note = Note(spec.name, NoteKind.IN_PROGRESS, ref, _in_progress_message(current))
            return None
        if current.status is Status.SUCCESS:
            out.note = Note(spec.name, NoteKind.DONE, ref, f"Job {current.id} succeeded.")
            return None
        if current.attempt < spec.max_attempts:
            return Change(
                Action.CREATE,
                spec.name,
                Reason.RETRY,
                spec=spec,
                attempt=current.attempt + 1,
                previous=ref,
            )
        out.note = Note(spec.name, NoteKind.EXHAUSTED, ref, _exhausted_message(current, spec))
        return None

    diffs = _diffs(current, spec)
    if current.status in _RUNNING:
        if spec.on_change is OnChange.REPLACE or rerun:
            return Change(
                Action.REPLACE,
                spec.name,
                Reason.SPEC_CHANGED,
                live=ref,
                spec=spec,
                attempt=1,
                diffs=diffs,
            )
        out.note = Note(
            spec.name,
            NoteKind.WAITING,
            ref,
            f"on_change is wait: the new version will be created once job {current.id} "
            f"({current.status}) ends.",
            diffs=diffs,
        )
        return None
    # Finished, or CANCELLATION_REQUESTED: it is going away and produces no results, so
    # there is nothing to wait for and nothing to cancel, whatever on_change says.
    return Change(
        Action.CREATE,
        spec.name,
        Reason.SPEC_CHANGED,
        spec=spec,
        attempt=1,
        diffs=diffs,
        previous=ref,
    )


def _diffs(current: LiveJob, spec: JobSpec) -> tuple[FieldDiff, ...]:
    diffs = field_diffs(current.fields(), tags.desired_fields(spec))
    diffs = with_request_detail(diffs, current.request_map, spec)
    return diffs or (spec_pseudo_diff(current.spec_digest, spec.digest),)


def _in_progress_message(job: LiveJob) -> str:
    if job.total_requests:
        return f"Job {job.id} is {job.status} ({job.completed_requests}/{job.total_requests})."
    return f"Job {job.id} is {job.status}."


def _exhausted_message(job: LiveJob, spec: JobSpec) -> str:
    return (
        f"Job {job.id} ended {job.status} on attempt {job.attempt} and max_attempts is "
        f"{spec.max_attempts}: it will not be retried. Change the job's spec, or raise "
        f"max_attempts, to run it again."
    )


# -- guards ------------------------------------------------------------------------------


def _guards(
    changes: Sequence[Change],
    policy: Policy,
    *,
    workspace: str,
    desired_count: int,
    managed: int,
) -> tuple[Violation, ...]:
    violations: list[Violation] = []

    protected_changes: dict[str, list[Change]] = {}
    for change in changes:
        if change.protected:
            protected_changes.setdefault(change.name, []).append(change)
    for name, blocked in protected_changes.items():  # changes are sorted by name
        violations.append(
            Violation(
                GuardKind.PREVENT_DESTROY,
                f"{name} has prevent_destroy set, but this plan would {_what(blocked)}. "
                "prevent_destroy cannot be overridden by --allow-destroy: remove it from "
                "the job's configuration first, if the job really should go.",
                names=(name,),
            )
        )

    destroyed: dict[str, str] = {}  # job id -> name, each id once
    for change in changes:
        job_id = change.destroyed_job_id
        if job_id is not None:
            destroyed[job_id] = change.name
    count = len(destroyed)
    names = tuple(sorted(set(destroyed.values())))
    accepted = policy.allow_destroy == count

    if count > policy.max_destroy and not accepted:
        head = (
            f"This plan would cancel or delete {_jobs(count)}, more than "
            f"safety.max_destroy ({policy.max_destroy})."
        )
        violations.append(Violation(GuardKind.MAX_DESTROY, _accept(head, count, policy), names))

    if desired_count == 0 and managed > 0 and not policy.destroy_all and not accepted:
        head = (
            f"The configuration declares no jobs, so this plan would cancel or delete every "
            f"managed job of workspace {workspace} ({_jobs(count)})."
        )
        tail = " (or use `reconciler destroy`)"
        violations.append(
            Violation(GuardKind.EMPTY_DESIRED, _accept(head, count, policy, tail), names)
        )
    return tuple(violations)


def _accept(head: str, count: int, policy: Policy, tail: str = "") -> str:
    if policy.allow_destroy is None:
        return f"{head} If that is intended, re-run with --allow-destroy={count}{tail}."
    return (
        f"{head} --allow-destroy={policy.allow_destroy} does not match it: review the plan, "
        f"then re-run with --allow-destroy={count}{tail}."
    )


def _jobs(n: int, noun: str = "live job") -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _what(changes: Iterable[Change]) -> str:
    phrases = [_verb(c) for c in changes]
    if len(phrases) > _LISTED:
        rest = len(phrases) - _LISTED
        phrases = [*phrases[:_LISTED], f"{rest} more job{'s' if rest != 1 else ''}"]
    if len(phrases) == 1:
        return phrases[0]
    return ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _verb(change: Change) -> str:
    job = change.live.id if change.live is not None else "?"
    match change.action:
        case Action.REPLACE:
            return f"replace job {job}"
        case Action.CANCEL:
            return f"cancel job {job}"
        case Action.DELETE:
            return f"delete job {job}"
        case Action.CREATE:
            return f"create {change.name}"
        case _:
            assert_never(change.action)
