"""A deterministic world for the planning benchmarks: desired jobs, managed and foreign
live jobs, in a realistic mix of states, both as plain data (for the pure planner) and as
create bodies with emulated creation times (for seeding the emulator).

For ``n`` desired jobs there are exactly ``n`` managed live jobs and ``n`` foreign ones.
Per 20 job names (so every share is 5 %):

    13  SUCCESS, spec unchanged          nothing to do (done)
     2  RUNNING, spec unchanged          nothing to do (in progress)
     1  QUEUED, spec unchanged           nothing to do (in progress)
     1  FAILED, max_attempts 2           create (retry)
     1  SUCCESS, model changed           create (new version)
     1  RUNNING, model changed           replace
     1  new in the configuration         create
        ... and, in that last slot, one job removed from the configuration: delete
        (SUCCESS) or cancel (RUNNING), alternately

Foreign jobs carry the same job names under another workspace's tag: the planner must
neither count nor touch them, and the server-side filter must not even return them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from reconciler.api import Status
from reconciler.apply.executor import create_body
from reconciler.config.model import JobSpec, canonical_json
from reconciler.live import LiveJob

WORKSPACE = "bench-evals"
FOREIGN_WORKSPACE = "someone-else"
SMALL = "mistral-small-latest"
MEDIUM = "mistral-medium-latest"
EPOCH = 1_750_000_000  # created_at of the oldest plain-data job

_GOOD = canonical_json(
    [
        {
            "custom_id": "0",
            "body": {"max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]},
        }
    ]
)
_BAD = canonical_json([{"custom_id": "0", "body": {"max_tokens": 64}}])  # no messages: fails


class Kind(Enum):
    """What a live job is like when the plan is made (the emulator seeds it that way)."""

    DONE = "done"  # created long ago: SUCCESS (or FAILED for a bad body)
    RUNNING = "running"
    QUEUED = "queued"


@dataclass(frozen=True)
class Seeded:
    """One live job: the spec it was created from, under which workspace, and its state."""

    spec: JobSpec
    workspace: str
    kind: Kind
    status: Status  # what the plain-data world says (the emulator computes the same)

    def body(self, index: int) -> dict[str, Any]:
        """Its ``POST /v1/batch/jobs`` body, exactly as the executor builds one."""
        return create_body(
            self.workspace, self.spec, attempt=1, create_id=f"seed-{index:07d}", input_files=[]
        )

    def raw(self, index: int) -> dict[str, Any]:
        """The API's job object for it (what a listing returns), for the pure planner."""
        body = self.body(index)
        finished = self.status.is_terminal
        return {
            "id": f"{index:08d}-0000-4000-8000-000000000000",
            "object": "batch",
            "status": self.status.value,
            "created_at": EPOCH + index,
            "endpoint": body["endpoint"],
            "model": body.get("model"),
            "agent_id": None,
            "input_files": [],
            "metadata": body["metadata"],
            "total_requests": 1,
            "completed_requests": 1 if finished else 0,
            "succeeded_requests": 1 if self.status is Status.SUCCESS else 0,
            "failed_requests": 1 if self.status is Status.FAILED else 0,
            "errors": [],
            "outputs": None,
            "output_file": None,
            "error_file": None,
            "started_at": None,
            "completed_at": None,
        }


@dataclass(frozen=True)
class World:
    desired: tuple[JobSpec, ...]
    managed: tuple[Seeded, ...]
    foreign: tuple[Seeded, ...]

    @property
    def live(self) -> tuple[Seeded, ...]:
        """Every live job, in creation order (foreign ones interleaved with ours)."""
        return tuple(job for pair in zip(self.managed, self.foreign, strict=True) for job in pair)

    def live_jobs(self) -> list[LiveJob]:
        """The live jobs as the reader would decode them (foreign ones included: the planner
        must ignore them)."""
        out = []
        for index, job in enumerate(self.live):
            decoded = LiveJob.from_api(job.raw(index), job.workspace, seq=index)
            assert decoded is not None
            out.append(decoded)
        return out

    def fresh_desired(self) -> list[JobSpec]:
        """Copies of the desired specs without cached digests, as the loader hands them over."""
        return [dataclasses.replace(spec) for spec in self.desired]

    def expected_summary(self) -> tuple[int, int, int, int]:
        """(create, replace, cancel, delete) the plan must contain."""
        per20 = len(self.desired) // 20
        removed = per20
        return (3 * per20, per20, (removed + 1) // 2, removed // 2)


def _spec(name: str, requests_json: str = _GOOD, **changes: Any) -> JobSpec:
    spec = JobSpec(
        name=name,
        endpoint="/v1/chat/completions",
        model=SMALL,
        agent_id=None,
        requests_json=requests_json,
        metadata=(("team", "research"),),
        timeout_hours=24,
    )
    return dataclasses.replace(spec, **changes) if changes else spec


def _slots(n: int) -> Iterator[tuple[int, int]]:
    for i in range(n):
        yield i, i % 20


def build(n: int) -> World:
    """The world with ``n`` desired, ``n`` managed and ``n`` foreign jobs (``n`` % 20 == 0)."""
    if n <= 0 or n % 20:
        raise ValueError("n must be a positive multiple of 20")
    desired: list[JobSpec] = []
    managed: list[Seeded] = []
    removed = 0
    for i, slot in _slots(n):
        name = f"job-{i:06d}"
        live_spec = _spec(name)
        if slot < 12 or slot == 19:
            desired.append(live_spec)
            managed.append(Seeded(live_spec, WORKSPACE, Kind.DONE, Status.SUCCESS))
        elif slot < 14:
            desired.append(live_spec)
            managed.append(Seeded(live_spec, WORKSPACE, Kind.RUNNING, Status.RUNNING))
        elif slot == 14:
            desired.append(live_spec)
            managed.append(Seeded(live_spec, WORKSPACE, Kind.QUEUED, Status.QUEUED))
        elif slot == 15:
            failing = _spec(name, _BAD)
            desired.append(dataclasses.replace(failing, max_attempts=2))
            managed.append(Seeded(failing, WORKSPACE, Kind.DONE, Status.FAILED))
        elif slot == 16:
            desired.append(_spec(name, model=MEDIUM))
            managed.append(Seeded(live_spec, WORKSPACE, Kind.DONE, Status.SUCCESS))
        elif slot == 17:
            desired.append(_spec(name, model=MEDIUM))
            managed.append(Seeded(live_spec, WORKSPACE, Kind.RUNNING, Status.RUNNING))
        else:
            desired.append(live_spec)  # new: no live job of this name
            gone = _spec(f"gone-{i:06d}")  # and one live job no longer in the configuration
            running = removed % 2 == 0
            removed += 1
            kind, status = (
                (Kind.RUNNING, Status.RUNNING) if running else (Kind.DONE, Status.SUCCESS)
            )
            managed.append(Seeded(gone, WORKSPACE, kind, status))
    # Someone else's jobs, named like ours: same specs, another workspace's tag.
    foreign = [Seeded(job.spec, FOREIGN_WORKSPACE, Kind.DONE, Status.SUCCESS) for job in managed]
    return World(tuple(desired), tuple(managed), tuple(foreign))
