"""Execute a plan: every change is one task; independent tasks run concurrently.

Guarantees (DESIGN.md section 5):

- Creates are exactly-once. Every create carries the plan's ``reconciler.create-id``; a
  create whose outcome is unknown (timeout, dropped connection, 5xx) is resolved by
  looking that id up in live state before it is ever sent again.
- One failing task does not stop the others; the result lists every outcome.
- Nothing is kept locally: a crash at any moment leaves live state that the next plan reads
  as the remaining work (creates carry their tags from the first byte).
- An interrupt (Ctrl-C) starts nothing new and stops every wait: tasks not started are
  reported as skipped, a task waiting for a cancel to settle leaves the delete to the next
  apply. What is left is, again, exactly what the next plan shows.

What each action does, and what it tolerates because the world moved since the plan:

    create   upload inputs (content-addressed), POST the job; unknown outcome -> look up
             the create-id, adopt what is found, else back off and send again
    replace  cancel the old version (already finished or gone: fine), then create; with
             ``then_delete``, wait for the old one to stop and delete it
    cancel   cancel (finished or gone meanwhile: fine); ``then_delete``: wait, delete
    delete   (``await_terminal``: wait until it stopped) delete; already gone: fine
"""

from __future__ import annotations

import contextlib
import enum
import random
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any, assert_never

from reconciler import tags
from reconciler.api import Status
from reconciler.apply.uploads import Uploader
from reconciler.client import MistralClient
from reconciler.config.model import JobSpec
from reconciler.errors import ApiError, ReconcilerError, UnknownOutcome
from reconciler.live import LiveJob, find_by_create_id
from reconciler.plan.model import Action, Change, Plan, Reason
from reconciler.render.safe import terminal

Emit = Callable[[str, str], None]  # (job name, message): one progress line
_UNRESOLVED = "the create's outcome is unknown; the next plan shows whether the job exists"


@dataclass(frozen=True)
class Settings:
    parallelism: int = 8
    # How long a cancelled job may take to stop before its delete is left to a later apply.
    settle_timeout: float = 600.0
    poll_initial: float = 0.25
    poll_max: float = 5.0
    # Create calls sent for one change at most, each after its predecessor's outcome was
    # resolved as "not created" by a create-id lookup. A resend is safe (the lookup proved
    # the earlier one did nothing), so this is generous: a flaky API costs a little time,
    # not a failed apply.
    create_attempts: int = 8
    # Create-id lookups (each one retried by the client too) before an unknown outcome is
    # given up on. Resolving it is what keeps a create exactly-once, so it gets more tries.
    lookup_attempts: int = 4
    # Backoff between the attempts above: full jitter over base * 2**(n-1), capped.
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    debug: bool = False


class Interrupted(ReconcilerError):
    """Raised inside a task when the apply is being interrupted."""


class _Cancel(enum.Enum):
    """How a cancel call ended."""

    CANCELLING = "cancelling"  # the job is stopping (or was already)
    FINISHED = "finished"  # it had finished meanwhile: nothing to stop
    GONE = "gone"  # it no longer exists


@dataclass(frozen=True)
class Outcome:
    change: Change
    ok: bool
    message: str  # what happened, or why it failed
    job_id: str | None = None  # the job created (create/replace) or acted on
    skipped: bool = False  # never started (interrupted first)


@dataclass(frozen=True)
class ApplyResult:
    outcomes: tuple[Outcome, ...]
    interrupted: bool = False

    @property
    def failed(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if not o.ok)

    @property
    def succeeded(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.ok)

    def count(self, action: Action) -> int:
        return sum(1 for o in self.succeeded if o.change.action is action)

    def counts_phrase(self) -> str:
        """The plan line's counters, in its order, each always shown (``0 replaced`` too)."""
        return (
            f"{self.count(Action.CREATE)} created, {self.count(Action.REPLACE)} replaced, "
            f"{self.count(Action.CANCEL)} cancelled, {self.count(Action.DELETE)} deleted"
        )

    def report(self, what: str = "Apply") -> str:
        """The end report (``what`` is ``Apply`` or ``Destroy``): the summary line, then
        every failure with its reason. An interrupted run never reads as complete."""
        if not self.failed and not self.interrupted:
            return f"{what} complete: {self.counts_phrase()}."
        total = len(self.outcomes)
        skipped = [o for o in self.failed if o.skipped]
        failed = [o for o in self.failed if not o.skipped]
        if self.interrupted:
            head = (
                f"{what} interrupted: {len(failed)} of {total} action{'s' if total != 1 else ''} "
                f"failed or stopped, {len(skipped)} not started (done: {self.counts_phrase()}). "
                "Run plan to see what is left."
            )
        else:
            head = (
                f"{what} failed: {len(failed)} of {total} action{'s' if total != 1 else ''} "
                f"failed (done: {self.counts_phrase()})."
            )
        lines = [head]
        for outcome in failed:
            change = outcome.change
            name = terminal(change.name)  # from the API: it may hold a line break
            lines.append(f"  - {name} ({change.action.value}): {outcome.message}")
        return "\n".join(lines)


VERB = {
    Action.CREATE: "Creating",
    Action.REPLACE: "Replacing",
    Action.CANCEL: "Cancelling",
    Action.DELETE: "Deleting",
}


def create_body(
    workspace: str,
    spec: JobSpec,
    *,
    attempt: int,
    create_id: str,
    input_files: list[str],
    provenance: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``POST /v1/batch/jobs`` body for one create of ``spec``."""
    metadata = {
        **spec.metadata_dict,
        **tags.build(workspace, spec, attempt=attempt, create_id=create_id, provenance=provenance),
    }
    body: dict[str, Any] = {"endpoint": spec.endpoint, "metadata": metadata}
    if spec.model is not None:
        body["model"] = spec.model
    if spec.agent_id is not None:
        body["agent_id"] = spec.agent_id
    if spec.requests_json is not None:
        body["requests"] = spec.requests
    else:
        body["input_files"] = input_files
    body["timeout_hours"] = spec.timeout_hours
    return body


def _retryable(err: ApiError) -> bool:
    """A failure worth another try: no answer, rate limited, or a server error."""
    return err.status is None or err.status == 429 or err.status >= 500


class Executor:
    def __init__(
        self,
        client: MistralClient,
        *,
        root: Path,
        workspace: str,
        settings: Settings = Settings(),
        emit: Emit | None = None,
        sleep: Callable[[float], None] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        rand: Callable[[], float] = random.random,
        on_interrupt: Callable[[tuple[Change, ...]], None] | None = None,
    ) -> None:
        self._client = client
        # Told, once, which changes are in flight when an interrupt arrives.
        self._on_interrupt = on_interrupt
        self._running: dict[int, Change] = {}  # id(change) -> change, under _emit_lock
        self._provenance: dict[str, str] = {}  # the plan's id and commit, for every create
        self._workspace = workspace
        self._settings = settings
        self._emit_fn = emit
        self._emit_lock = threading.Lock()
        self._stop = threading.Event()
        self._sleep = sleep if sleep is not None else self._interruptible_sleep
        self._monotonic = monotonic
        self._rand = rand
        self.uploader = Uploader(
            client,
            root,
            backoff=self._backoff,
            attempts=settings.create_attempts,
            sleep=lambda seconds: self._pause(seconds, "an upload's outcome is unknown"),
        )

    def execute(self, plan: Plan) -> ApplyResult:
        """Run every change; a KeyboardInterrupt stops new work and is re-raised only after
        the tasks already running have stopped (their outcomes are in ``interrupted``)."""
        missing = [c.name for c in plan.changes if c.spec is not None and not c.create_id]
        if missing:
            raise ValueError(f"changes without a create id: {', '.join(missing)}")
        if plan.workspace != self._workspace:
            raise ValueError("the plan belongs to another workspace")
        self._provenance = tags.provenance(plan_id=plan.plan_id, commit=plan.commit)
        workers = max(1, min(self._settings.parallelism, len(plan.changes) or 1))
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="apply")
        # An interrupt while submitting would leave a worker thread started but not yet
        # known to the pool (Thread.start waits for it to run, and it may already be
        # printing): it is held until every task is submitted, then handled as below.
        futures: list[Future[Outcome]] = []
        try:
            with _interrupts_held() as held:
                futures.extend(pool.submit(self._run, c) for c in plan.changes)
            if held:
                raise KeyboardInterrupt
            wait_futures(futures)
        except KeyboardInterrupt:
            self.interrupt()
            if self._on_interrupt is not None:
                with self._emit_lock:
                    running = tuple(self._running.values())
                self._on_interrupt(running)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        outcomes = tuple(
            Outcome(c, ok=False, message="not started: interrupted", skipped=True)
            if f.cancelled()
            else f.result()
            for c, f in zip(plan.changes, futures, strict=True)
        )
        return ApplyResult(outcomes, interrupted=self._stop.is_set())

    def interrupt(self) -> None:
        """Start nothing new; make every task waiting or backing off stop."""
        self._stop.set()

    # -- one change ----------------------------------------------------------------------

    def _run(self, change: Change) -> Outcome:
        if self._stop.is_set():
            return Outcome(change, ok=False, message="not started: interrupted", skipped=True)
        with self._emit_lock:
            self._running[id(change)] = change
        self._emit(change.name, self._starting(change))
        try:
            outcome = self._dispatch(change)
        except ReconcilerError as err:
            outcome = Outcome(change, ok=False, message=err.format())
        except Exception as err:  # a bug must not stop the other tasks
            detail = traceback.format_exc() if self._settings.debug else f"{err!r}"
            outcome = Outcome(change, ok=False, message=f"unexpected error: {detail}")
        finally:
            with self._emit_lock:
                self._running.pop(id(change), None)
        if outcome.ok:
            self._emit(change.name, outcome.message)
        else:
            self._emit(change.name, f"Error: {outcome.message}")
        return outcome

    def _dispatch(self, change: Change) -> Outcome:
        match change.action:
            case Action.CREATE:
                job = self._create(change)
                return Outcome(change, True, f"Creation complete [id={job}]", job)
            case Action.REPLACE:
                old = _live_id(change)
                cancelled = self._cancel(old)
                job = self._create(change)
                if change.then_delete and cancelled is not _Cancel.GONE:
                    self._settle_and_delete(old, change.name)
                return Outcome(
                    change, True, f"Replacement complete [id={job}, replaced {old}]", job
                )
            case Action.CANCEL:
                old = _live_id(change)
                cancelled = self._cancel(old)
                if cancelled is _Cancel.GONE:
                    return Outcome(change, True, f"Already gone [id={old}]", old)
                note = " (it had already finished)" if cancelled is _Cancel.FINISHED else ""
                if change.then_delete:
                    self._settle_and_delete(old, change.name)
                    return Outcome(change, True, f"Cancelled and deleted{note} [id={old}]", old)
                return Outcome(change, True, f"Cancellation complete{note} [id={old}]", old)
            case Action.DELETE:
                old = _live_id(change)
                if change.await_terminal and self._settle(old, change.name) is None:
                    return Outcome(change, True, f"Already gone [id={old}]", old)
                self._delete(old, change.name)
                return Outcome(change, True, f"Deletion complete [id={old}]", old)
            case _:
                assert_never(change.action)

    def _starting(self, change: Change) -> str:
        verb = VERB[change.action]
        if change.live is not None:
            return f"{verb}... [id={change.live.id}]"
        return f"{verb}..."

    # -- API steps -----------------------------------------------------------------------

    def _create(self, change: Change) -> str:
        spec, create_id = change.spec, change.create_id
        assert spec is not None and create_id is not None and change.attempt is not None
        if spec.inputs:
            input_files = [self.uploader.ensure(item) for item in spec.inputs]
        elif spec.prompts is not None:
            input_files = [self.uploader.ensure_prompts(spec.prompts)]
        else:
            input_files = list(spec.input_files)
        # A re-run on request names the job it re-runs (its run starts there, see planner).
        rerun = change.live or change.previous if change.reason is Reason.REQUESTED else None
        body = create_body(
            self._workspace,
            spec,
            attempt=change.attempt,
            create_id=create_id,
            input_files=input_files,
            provenance={
                **self._provenance,
                **tags.provenance(rerun_of=rerun.id if rerun is not None else None),
            },
        )
        last: UnknownOutcome | None = None
        for attempt in range(1, self._settings.create_attempts + 1):
            if attempt > 1:
                # The previous attempt did not create the job: only now is a resend safe.
                self._emit(change.name, f"Retrying the create (attempt {attempt})...")
            try:
                return str(self._client.create_job(body)["id"])
            except UnknownOutcome as err:
                last = err
                self._emit(
                    change.name,
                    f"Create outcome unknown ({err.message}); looking up its create-id...",
                )
            # Give a request that is still in flight time to land before looking: a lookup
            # that runs ahead of it would wrongly say "not created".
            self._pause(self._backoff(attempt), _UNRESOLVED)
            found = self._lookup(create_id)
            if found is not None:
                self._emit(change.name, f"The create went through: adopting {found.id}")
                return found.id
        assert last is not None
        raise last

    def _lookup(self, create_id: str) -> LiveJob | None:
        """The job made with ``create_id``, or None; transient failures are tried again."""
        for attempt in range(1, self._settings.lookup_attempts + 1):
            try:
                return find_by_create_id(self._client, self._workspace, create_id)
            except ApiError as err:
                if not _retryable(err) or attempt == self._settings.lookup_attempts:
                    raise ReconcilerError(
                        f"the create's outcome is unknown and looking it up failed: "
                        f"{err.format()}. Nothing was sent again; the next plan shows "
                        "whether the job exists"
                    ) from err
            self._pause(self._backoff(attempt), _UNRESOLVED)
        raise AssertionError("unreachable")

    def _cancel(self, job_id: str) -> _Cancel:
        try:
            self._client.cancel_job(job_id)
        except ApiError as err:
            if err.status == 404:
                return _Cancel.GONE
            if err.status == 400:
                # It may have finished (or been cancelled) since the plan: nothing to stop.
                try:
                    status = Status(self._client.get_job(job_id)["status"])
                except ApiError as again:
                    if again.status == 404:
                        return _Cancel.GONE
                    raise
                if status is Status.CANCELLATION_REQUESTED:
                    return _Cancel.CANCELLING
                if status.is_terminal:
                    return _Cancel.FINISHED
            raise
        return _Cancel.CANCELLING

    def _settle(self, job_id: str, name: str) -> Status | None:
        """Wait, polling with growing intervals, until ``job_id`` is terminal; None when
        it no longer exists."""
        started = self._monotonic()
        delay = self._settings.poll_initial
        reported = started
        while True:
            try:
                status = Status(self._client.get_job(job_id)["status"])
            except ApiError as err:
                if err.status == 404:
                    return None
                raise
            if status.is_terminal:
                return status
            now = self._monotonic()
            if now - started >= self._settings.settle_timeout:
                raise ReconcilerError(
                    f"job {job_id} is still {status} after {now - started:.0f}s; "
                    "a later apply deletes it once it has stopped"
                )
            if now - reported >= 10:
                reported = now
                self._emit(name, f"Still stopping... [id={job_id}, {now - started:.0f}s elapsed]")
            self._pause(delay, f"job {job_id} is still {status}; a later apply deletes it")
            delay = min(delay * 1.5, self._settings.poll_max)

    def _delete(self, job_id: str, name: str) -> None:
        try:
            self._client.delete_job(job_id)
        except ApiError as err:
            if err.status == 404:
                return  # already gone: the goal is met
            if err.status != 400:
                raise
            # Still active (e.g. restarted cancellation): wait for it, then once more.
            if self._settle(job_id, name) is None:
                return
            self._client.delete_job(job_id)

    def _settle_and_delete(self, job_id: str, name: str) -> None:
        if self._settle(job_id, name) is not None:
            self._delete(job_id, name)

    # -- waiting -------------------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        ceiling = min(
            self._settings.backoff_max, self._settings.backoff_base * 2.0 ** (attempt - 1)
        )
        return max(0.0, min(1.0, self._rand())) * ceiling

    def _pause(self, seconds: float, interrupted: str = "") -> None:
        """Sleep, unless the apply is being interrupted: then raise Interrupted."""
        if self._stop.is_set():
            raise Interrupted(f"interrupted{': ' + interrupted if interrupted else ''}")
        self._sleep(seconds)
        if self._stop.is_set():
            raise Interrupted(f"interrupted{': ' + interrupted if interrupted else ''}")

    def _interruptible_sleep(self, seconds: float) -> None:
        self._stop.wait(seconds)

    def _emit(self, name: str, message: str) -> None:
        if self._emit_fn is None:
            return
        with self._emit_lock:
            self._emit_fn(name, message)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[list[int]]:
    """SIGINT (and SIGTERM, when a Python handler turns it into an interrupt) recorded,
    not raised, for the duration: the list holds the signals received."""
    held: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield held
        return
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if callable(current):
            previous[signum] = current
            signal.signal(signum, lambda n, frame: held.append(n))
    try:
        yield held
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _live_id(change: Change) -> str:
    if change.live is None:
        raise ValueError(f"{change.action.value} of {change.name} names no live job")
    return change.live.id
