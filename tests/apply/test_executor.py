"""The executor against the in-process emulator: exactly-once creates, a world that moved
since the plan (finished, cancelled, deleted jobs), failures that stay local, interrupts.

Plans come from the real planner over live state read from the emulator; time is the
emulator's ManualClock, moved only by the tests. A scripted transport in front of the
emulator injects failures at exact requests (answered without reaching the emulator, or
handled and committed, then dropped).
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import httpx
import pytest

from reconciler.api import Status
from reconciler.apply.executor import ApplyResult, Executor, Settings
from reconciler.apply.uploads import upload_name
from reconciler.client import MistralClient, RetryPolicy
from reconciler.config.model import JobSpec, LocalInput, canonical_json
from reconciler.emulator import LOCAL_BASE_URL, Emulator, InProcessTransport, ManualClock
from reconciler.inputs import check_input
from reconciler.live import LiveJob, read_live_state
from reconciler.plan.model import Action, Plan
from reconciler.plan.planner import Policy, plan

WS = "exec-tests"
JOBS = "/v1/batch/jobs"
FILES = "/v1/files"

FaultKind = Literal["503", "timeout", "drop"]


@dataclass
class Fault:
    """``503``/``timeout``: the request never reaches the emulator; ``drop``: the emulator
    handles (and commits) it, then the answer is lost."""

    method: str
    path: str
    kind: FaultKind
    times: int = 1


@dataclass
class Interposer(httpx.BaseTransport):
    inner: httpx.BaseTransport
    faults: list[Fault] = field(default_factory=list)
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # method, path, fate
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        with self.lock:
            fault = next(
                (f for f in self.faults if f.times > 0 and f.method == method and f.path == path),
                None,
            )
            if fault is not None:
                fault.times -= 1
            self.seen.append((method, path, fault.kind if fault else "ok"))
        if fault is None:
            return self.inner.handle_request(request)
        if fault.kind == "503":
            return httpx.Response(503, json={"message": "injected"}, request=request)
        if fault.kind == "timeout":
            raise httpx.ReadTimeout("injected timeout", request=request)
        response = self.inner.handle_request(request)
        response.read()
        response.close()
        raise httpx.RemoteProtocolError("injected: connection dropped after commit")

    def sent(self, method: str, path: str) -> int:
        """Requests that reached the emulator."""
        return sum(1 for m, p, fate in self.seen if (m, p) == (method, path) and fate != "503")


@dataclass
class World:
    emulator: Emulator
    clock: ManualClock
    wire: Interposer
    client: MistralClient
    root: Path
    lines: list[tuple[str, str]] = field(default_factory=list)

    def live(self) -> list[LiveJob]:
        return list(read_live_state(self.client, WS).jobs)

    def plan(self, specs: list[JobSpec], **policy: object) -> Plan:
        counter = itertools.count(1)
        planned = plan(specs, self.live(), Policy(max_destroy=100, **policy), workspace=WS)  # type: ignore[arg-type]
        return planned.with_create_ids(lambda: f"cid-{next(counter)}-{uuid.uuid4().hex[:8]}")

    def executor(self, **settings: object) -> Executor:
        # Sleeping is a no-op here: a settle that never ends must still end the test.
        values: dict[str, object] = {
            "poll_initial": 0.0,
            "poll_max": 0.0,
            "backoff_base": 0.0,
            "settle_timeout": 5.0,
        }
        values.update(settings)
        return Executor(
            self.client,
            root=self.root,
            workspace=WS,
            settings=Settings(**values),  # type: ignore[arg-type]
            emit=lambda name, message: self.lines.append((name, message)),
            sleep=lambda seconds: None,
        )

    def apply(self, specs: list[JobSpec], **settings: object) -> ApplyResult:
        return self.executor(**settings).execute(self.plan(specs))

    def create_by_hand(self, specs: list[JobSpec]) -> list[str]:
        """Create jobs as a first apply would (the setup of later scenarios)."""
        result = self.apply(specs)
        assert not result.failed, result.report()
        return [o.job_id or "" for o in result.outcomes]

    def status(self, job_id: str) -> Status:
        return Status(self.client.get_job(job_id)["status"])


@pytest.fixture
def world(emulator: Emulator, emulator_clock: ManualClock, tmp_path: Path) -> Iterator[World]:
    wire = Interposer(InProcessTransport(emulator))
    client = MistralClient(
        LOCAL_BASE_URL,
        "exec-token",
        transport=wire,
        retry=RetryPolicy(max_attempts=3, base_delay=0.0),
        sleep=lambda seconds: None,
    )
    root = tmp_path / "root"
    root.mkdir()
    with client:
        yield World(emulator, emulator_clock, wire, client, root)


def job(name: str, *, model: str = "mistral-small-latest", n: int = 2, **extra: object) -> JobSpec:
    requests = [
        {"custom_id": str(i), "body": {"messages": [{"role": "user", "content": f"{name} {i}"}]}}
        for i in range(n)
    ]
    return JobSpec(
        name=name,
        endpoint="/v1/chat/completions",
        model=model,
        agent_id=None,
        requests_json=canonical_json(requests),
        **extra,  # type: ignore[arg-type]
    )


def names_of(jobs: list[LiveJob]) -> list[str]:
    return sorted(j.name for j in jobs)


# -- exactly-once creates ---------------------------------------------------------------


def test_a_create_committed_then_dropped_is_adopted_by_its_create_id(world: World) -> None:
    world.wire.faults = [Fault("POST", JOBS, "drop")]
    p = world.plan([job("a")])
    create_id = p.changes[0].create_id

    result = world.executor().execute(p)

    assert not result.failed, result.report()
    live = world.live()
    assert [(j.name, j.create_id) for j in live] == [("a", create_id)]
    assert result.outcomes[0].job_id == live[0].id
    assert world.wire.sent("POST", JOBS) == 1  # never sent again
    assert ("a", f"The create went through: adopting {live[0].id}") in world.lines


def test_a_create_that_did_not_happen_is_sent_again_only_after_the_lookup(world: World) -> None:
    world.wire.faults = [Fault("POST", JOBS, "503"), Fault("POST", JOBS, "timeout")]

    result = world.apply([job("a")])

    assert not result.failed, result.report()
    assert names_of(world.live()) == ["a"]
    # Every POST after the first follows a GET that looked the create-id up.
    trail = [(m, fate) for m, p, fate in world.wire.seen if p == JOBS]
    posts = [i for i, (m, _) in enumerate(trail) if m == "POST"]
    assert [trail[i][1] for i in posts] == ["503", "timeout", "ok"]
    for before, after in itertools.pairwise(posts):
        assert any(m == "GET" for m, _ in trail[before + 1 : after])


def test_drops_on_every_create_still_give_one_job_each(world: World) -> None:
    world.wire.faults = [Fault("POST", JOBS, "drop", times=1000)]

    result = world.apply([job(n) for n in "abcdefgh"])

    assert not result.failed, result.report()
    assert names_of(world.live()) == list("abcdefgh")
    assert world.wire.sent("POST", JOBS) == 8


def test_a_create_never_resolved_fails_without_a_duplicate(world: World) -> None:
    world.wire.faults = [Fault("POST", JOBS, "503", times=1000)]

    result = world.apply([job("a"), job("b")], create_attempts=3)

    assert [o.change.name for o in result.failed] == ["a", "b"]
    assert world.live() == []
    assert "may or may not have taken effect" in result.failed[0].message
    assert result.report().startswith("Apply failed: 2 of 2 actions failed")


def test_a_lookup_that_keeps_failing_fails_the_create_and_never_resends(world: World) -> None:
    p = world.plan([job("a")])
    world.wire.faults = [Fault("POST", JOBS, "drop"), Fault("GET", JOBS, "503", times=1000)]

    result = world.executor(lookup_attempts=2).execute(p)

    assert [o.change.name for o in result.failed] == ["a"]
    assert "looking it up failed" in result.failed[0].message
    assert world.wire.sent("POST", JOBS) == 1
    world.wire.faults = []
    assert names_of(world.live()) == ["a"]  # the dropped create did happen: the next plan sees it
    assert world.plan([job("a")]).changes == ()


# -- the world moved since the plan -------------------------------------------------------


def test_cancel_of_a_job_that_finished_meanwhile_succeeds_and_deletes_it(world: World) -> None:
    world.create_by_hand([job("gone-soon"), job("kept")])
    p = world.plan([job("kept")])  # gone-soon removed: cancel, then delete
    assert [(c.action, c.name, c.then_delete) for c in p.changes] == [
        (Action.CANCEL, "gone-soon", True)
    ]
    world.clock.advance(60)  # it finishes before the apply runs

    result = world.executor().execute(p)

    assert not result.failed, result.report()
    assert "already finished" in result.outcomes[0].message
    assert names_of(world.live()) == ["kept"]


def test_delete_of_a_job_deleted_meanwhile_succeeds(world: World) -> None:
    (old,) = world.create_by_hand([job("old")])
    world.clock.advance(60)
    p = world.plan([])
    assert [(c.action, c.name) for c in p.changes] == [(Action.DELETE, "old")]
    world.client.delete_job(old)  # someone else deleted it

    result = world.executor().execute(p)

    assert not result.failed, result.report()
    assert world.live() == []


def test_cancel_of_a_job_deleted_meanwhile_succeeds(world: World) -> None:
    (old,) = world.create_by_hand([job("old")])
    p = world.plan([])
    world.client.cancel_job(old)
    world.clock.advance(60)
    world.client.delete_job(old)

    result = world.executor().execute(p)

    assert not result.failed, result.report()
    assert result.outcomes[0].message == f"Already gone [id={old}]"


def test_replace_of_a_job_that_finished_meanwhile_creates_the_new_version(world: World) -> None:
    (old,) = world.create_by_hand([job("a")])
    p = world.plan([job("a", model="mistral-large-latest")])
    assert [c.action for c in p.changes] == [Action.REPLACE]
    world.clock.advance(60)

    result = world.executor().execute(p)

    assert not result.failed, result.report()
    versions = [j for j in world.live() if j.name == "a"]
    assert [(j.id == old, j.model) for j in versions] == [
        (True, "mistral-small-latest"),
        (False, "mistral-large-latest"),
    ]
    assert world.status(old) is Status.SUCCESS  # finished on its own, never cancelled


def test_replace_cancels_the_old_version_then_creates(world: World) -> None:
    (old,) = world.create_by_hand([job("a")])

    result = world.apply([job("a", model="mistral-large-latest")])

    assert not result.failed, result.report()
    assert world.status(old) is Status.CANCELLATION_REQUESTED
    new = result.outcomes[0].job_id
    assert new is not None and world.status(new) is Status.QUEUED


# -- failures stay local ------------------------------------------------------------------


def test_a_settle_timeout_fails_that_action_only(world: World) -> None:
    world.create_by_hand([job("stuck"), job("fine")])
    ticks = itertools.count()
    p = world.plan([job("fine"), job("new")])  # stuck: cancel then delete; new: create
    executor = Executor(
        world.client,
        root=world.root,
        workspace=WS,
        settings=Settings(settle_timeout=5.0, poll_initial=1.0, poll_max=1.0),
        sleep=lambda seconds: None,
        monotonic=lambda: float(next(ticks)),  # the emulator's clock stands still
    )

    result = executor.execute(p)

    assert [(o.change.name, o.ok) for o in result.outcomes] == [("new", True), ("stuck", False)]
    assert "still CANCELLATION_REQUESTED" in result.failed[0].message
    assert "a later apply deletes it" in result.failed[0].message
    report = result.report().splitlines()
    assert (
        report[0] == "Apply failed: 1 of 2 actions failed "
        "(done: 1 created, 0 replaced, 0 cancelled, 0 deleted)."
    )
    assert report[1].startswith("  - stuck (cancel): job ")
    # What is left is exactly what the next plan does.
    world.clock.advance(60)
    assert [(c.action, c.name) for c in world.plan([job("fine"), job("new")]).changes] == [
        (Action.DELETE, "stuck")
    ]


def test_one_rejected_create_does_not_stop_the_others(world: World) -> None:
    bad = JobSpec(
        name="bad",
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        agent_id=None,
        input_files=(str(uuid.uuid4()),),  # no such file: the API answers 422
    )
    result = world.apply([job("a"), bad, job("c")], parallelism=1)

    assert [(o.change.name, o.ok) for o in result.outcomes] == [
        ("a", True),
        ("bad", False),
        ("c", True),
    ]
    assert "POST /v1/batch/jobs (HTTP 422)" in result.failed[0].message
    assert names_of(world.live()) == ["a", "c"]
    assert result.report().splitlines()[1].startswith("  - bad (create): POST /v1/batch/jobs")


def test_an_unexpected_error_is_reported_not_raised(world: World) -> None:
    p = world.plan([job("a"), job("b")])

    def boom(body: object) -> dict[str, object]:
        raise RuntimeError("bug")

    executor = world.executor()
    world.client.create_job = boom  # type: ignore[method-assign]
    result = executor.execute(p)

    assert [o.message for o in result.failed] == ["unexpected error: RuntimeError('bug')"] * 2


# -- interrupts ---------------------------------------------------------------------------


def test_an_interrupt_stops_waiting_and_starts_nothing_new(world: World) -> None:
    world.create_by_hand([job("stuck")])
    p = world.plan([job("b"), job("c")])  # b, c: create; stuck: cancel then delete
    order = [c.name for c in p.changes]
    assert order == ["b", "c", "stuck"]
    executor: Executor

    def sleep(seconds: float) -> None:
        executor.interrupt()  # Ctrl-C arrives while stuck is settling

    executor = Executor(
        world.client,
        root=world.root,
        workspace=WS,
        settings=Settings(parallelism=1, poll_initial=0.0),
        sleep=sleep,
    )
    stuck = p.changes[2]
    result = executor.execute(Plan(WS, changes=(stuck, *p.changes[:2])))

    assert result.interrupted
    assert [(o.change.name, o.ok, o.skipped) for o in result.outcomes] == [
        ("stuck", False, False),
        ("b", False, True),
        ("c", False, True),
    ]
    assert result.report().startswith("Apply interrupted: 1 of 3 actions failed or stopped")
    assert names_of(world.live()) == ["stuck"]


# -- uploads ------------------------------------------------------------------------------


def local_input(root: Path, name: str, lines: int = 3) -> LocalInput:
    path = root / name
    path.write_text(
        "".join(
            json.dumps(
                {"custom_id": str(i), "body": {"messages": [{"role": "user", "content": "x"}]}}
            )
            + "\n"
            for i in range(lines)
        )
    )
    checked, problems = check_input(path, rel=name)
    assert problems == []
    return checked


def from_inputs(name: str, *inputs: LocalInput) -> JobSpec:
    return JobSpec(
        name=name,
        endpoint="/v1/chat/completions",
        model="mistral-small-latest",
        agent_id=None,
        inputs=inputs,
    )


def test_the_same_bytes_are_uploaded_once_across_jobs_and_runs(world: World) -> None:
    shared = local_input(world.root, "shared.jsonl")
    first = world.executor()
    result = first.execute(world.plan([from_inputs("a", shared), from_inputs("b", shared)]))
    assert not result.failed, result.report()
    assert first.uploader.uploaded == [shared.sha256]

    second = world.executor()
    desired = [from_inputs(name, shared) for name in ("a", "b", "c")]
    result = second.execute(world.plan(desired))
    assert not result.failed, result.report()
    assert (second.uploader.uploaded, second.uploader.reused) == ([], [shared.sha256])
    assert world.wire.sent("POST", FILES) == 1
    files = world.client.list_files(search=shared.sha256)["data"]
    assert [f["filename"] for f in files] == [upload_name(shared.sha256)]
    jobs = {j.name: j for j in world.live()}
    assert jobs["a"].input_files == jobs["c"].input_files == (files[0]["id"],)


def test_an_upload_whose_answer_was_lost_is_found_not_sent_again(world: World) -> None:
    data = local_input(world.root, "data.jsonl")
    world.wire.faults = [Fault("POST", FILES, "drop")]

    result = world.apply([from_inputs("a", data)])

    assert not result.failed, result.report()
    assert world.wire.sent("POST", FILES) == 1


def test_an_input_changed_since_the_plan_is_not_uploaded(world: World) -> None:
    data = local_input(world.root, "data.jsonl")
    p = world.plan([from_inputs("a", data), job("b")])
    (world.root / "data.jsonl").write_text('{"custom_id": "other", "body": {}}\n')

    result = world.executor().execute(p)

    assert [o.change.name for o in result.failed] == ["a"]
    assert "changed since the plan was made" in result.failed[0].message
    assert world.wire.sent("POST", FILES) == 0
    assert names_of(world.live()) == ["b"]


def test_create_ids_are_required(world: World) -> None:
    bare = plan([job("a")], [], Policy(), workspace=WS)
    with pytest.raises(ValueError, match="without a create id"):
        world.executor().execute(bare)
