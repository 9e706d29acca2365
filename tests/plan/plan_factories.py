"""Plain-data builders for planner tests: desired specs and live jobs, no server, no mocks.

Live jobs are built the way the reader builds them: an API job object carrying the tags a
create of that spec would carry, decoded (and re-filtered) by ``LiveJob.from_api``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from reconciler import tags
from reconciler.api import Status
from reconciler.config.model import JobSpec, LocalInput, OnChange
from reconciler.live import LiveJob
from reconciler.plan.model import Action, Change, Plan

WS = "research-evals"
SMALL = "mistral-small-latest"
MEDIUM = "mistral-medium-latest"


def spec(
    name: str,
    *,
    model: str | None = SMALL,
    agent_id: str | None = None,
    endpoint: str = "/v1/chat/completions",
    inputs: Sequence[LocalInput] = (),
    input_files: Sequence[str] = (),
    requests_json: str | None = None,
    metadata: dict[str, str] | None = None,
    timeout_hours: int = 24,
    max_attempts: int = 1,
    on_change: OnChange = OnChange.REPLACE,
    prevent_destroy: bool = False,
    history_limit: int | None = None,
) -> JobSpec:
    if not inputs and not input_files and requests_json is None:
        input_files = (f"file-{name}",)
    return JobSpec(
        name=name,
        endpoint=endpoint,
        model=model,
        agent_id=agent_id,
        inputs=tuple(inputs),
        input_files=tuple(input_files),
        requests_json=requests_json,
        metadata=tuple(sorted((metadata or {}).items())),
        timeout_hours=timeout_hours,
        max_attempts=max_attempts,
        on_change=on_change,
        prevent_destroy=prevent_destroy,
        history_limit=history_limit,
    )


def local_input(path: str, fill: str, lines: int = 10) -> LocalInput:
    return LocalInput(path=path, sha256=fill * 64, size=lines * 100, lines=lines)


def raw_job(
    of: JobSpec,
    *,
    id: str,
    status: Status | str = Status.SUCCESS,
    created_at: int = 1_000,
    attempt: int = 1,
    create_id: str | None = None,
    workspace: str = WS,
    total: int = 0,
    completed: int = 0,
    extra_metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The API's job object for a create of ``of`` (what the list endpoint returns)."""
    metadata: dict[str, str] = {
        **of.metadata_dict,
        **tags.build(workspace, of, attempt=attempt, create_id=create_id or f"cid-{id}"),
        **(extra_metadata or {}),
    }
    return {
        "id": id,
        "object": "batch",
        "status": str(status),
        "created_at": created_at,
        "endpoint": of.endpoint,
        "model": of.model,
        "agent_id": of.agent_id,
        "input_files": list(of.input_files) or [f"upload-{i.sha256[:8]}" for i in of.inputs],
        "metadata": metadata,
        "total_requests": total,
        "completed_requests": completed,
        "succeeded_requests": completed,
        "failed_requests": 0,
        "errors": [],
    }


def live(
    of: JobSpec,
    id: str,
    status: Status | str = Status.SUCCESS,
    *,
    at: int = 1_000,
    seq: int = 0,
    attempt: int = 1,
    workspace: str = WS,
    total: int = 0,
    completed: int = 0,
) -> LiveJob:
    raw = raw_job(
        of,
        id=id,
        status=status,
        created_at=at,
        attempt=attempt,
        workspace=workspace,
        total=total,
        completed=completed,
    )
    job = LiveJob.from_api(raw, workspace, seq=seq)
    assert job is not None
    return job


def history(of: JobSpec, statuses: Iterable[Status], *, start: int = 1) -> list[LiveJob]:
    """Versions of one spec, oldest first, ids ``<name>-<n>``."""
    return [
        live(of, f"{of.name}-{start + i}", status, at=1_000 + 10 * (start + i))
        for i, status in enumerate(statuses)
    ]


def changed(of: JobSpec, **fields: Any) -> JobSpec:
    return dataclasses.replace(of, **fields)


def summary_of(plan: Plan) -> list[tuple[str, str, str, str | None]]:
    """(action, name, reason, live id) for each change: the shape most tests compare."""
    return [
        (str(c.action), c.name, str(c.reason), c.live.id if c.live else None) for c in plan.changes
    ]


def only(plan: Plan, action: Action) -> list[Change]:
    return [c for c in plan.changes if c.action is action]
