"""Live state: the managed jobs that exist, as plain data for the planner.

``LiveJob.from_api`` turns one API job object into a ``LiveJob`` when, and only when, it
belongs to the given workspace (the security boundary); everything else is foreign.

``read_live_state`` is the one reader: the server-side workspace filter keeps the listing
short (⌈managed/page_size⌉ calls), oldest first so that jobs created meanwhile land at the
end instead of shifting pages, and every job is re-filtered here because the server's
filter is never trusted. Only the page-iterating method of the client is used, through a
Protocol, so that the planner importing these data classes does not import httpx.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reconciler import api, tags
from reconciler.api import Status


@dataclass(frozen=True)
class LiveJob:
    """One managed job as the API reports it, with its ownership tags decoded."""

    id: str
    name: str
    workspace: str
    status: Status
    created_at: int
    endpoint: str
    model: str | None
    agent_id: str | None
    metadata: tuple[tuple[str, str], ...]  # user metadata (reserved keys removed), sorted
    input_files: tuple[str, ...]
    spec_digest: str  # "" when the tag is missing (job made by an older tool, or by hand)
    attempt: int  # 1 when the tag is missing or unreadable
    create_id: str
    timeout_hours: int | None  # from the tag; None when missing
    inputs_shown: tuple[str, ...] | None  # from the tag, as tags.encode_inputs shows it
    requests_shown: str | None  # from the tag, as tags.encode_requests shows it
    total_requests: int = 0
    completed_requests: int = 0
    succeeded_requests: int = 0
    failed_requests: int = 0
    output_file: str | None = None
    error_file: str | None = None
    started_at: int | None = None
    completed_at: int | None = None
    # Position in the oldest-first listing. created_at has one-second resolution, so jobs
    # created within the same second are ordered by where the server lists them.
    seq: int = 0
    request_map: str | None = None  # the tag, as reconciler.requestmap encodes it (a claim)
    commit: str | None = None  # provenance tags: the config's git commit, the plan's id
    plan_id: str | None = None
    rerun_of: str | None = None  # a re-run asked for with --replace: the job it re-ran
    prompts_shown: str | None = None  # from the tag, as tags.encode_prompts shows it

    @property
    def is_active(self) -> bool:
        return self.status.is_active

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def sort_key(self) -> tuple[int, int, str]:
        """Oldest first: creation second, then listing position, then id (a total order)."""
        return (self.created_at, self.seq, self.id)

    def fields(self) -> dict[str, Any]:
        """The same shape as :func:`reconciler.tags.desired_fields`, rebuilt from the API
        echo plus the tags, so that a plan can say which fields changed."""
        return {
            "endpoint": self.endpoint,
            "model": self.model,
            "agent_id": self.agent_id,
            "metadata": dict(self.metadata),
            "timeout_hours": self.timeout_hours,
            "inputs": None if self.inputs_shown is None else list(self.inputs_shown),
            "input_files": (
                list(self.input_files)
                if self.inputs_shown is None
                and self.requests_shown is None
                and self.prompts_shown is None
                and self.input_files
                else None
            ),
            "requests": self.requests_shown,
            "prompts": self.prompts_shown,
        }

    @classmethod
    def from_api(cls, job: Mapping[str, Any], workspace: str, seq: int = 0) -> LiveJob | None:
        """Decode an API job object; None unless it is tagged with exactly ``workspace``
        and a job name (the client-side re-filter: the server's filter is never trusted)."""
        metadata = job.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            return None
        if metadata.get(tags.WORKSPACE) != workspace:
            return None
        name = metadata.get(tags.JOB)
        if not isinstance(name, str) or not name:
            return None
        try:
            status = Status(job["status"])
        except (KeyError, ValueError):
            return None
        return cls(
            id=str(job["id"]),
            name=name,
            workspace=workspace,
            status=status,
            created_at=_int(job.get("created_at")),
            endpoint=str(job.get("endpoint") or ""),
            model=job.get("model"),
            agent_id=job.get("agent_id"),
            metadata=tuple(sorted(tags.user_metadata(metadata).items())),
            input_files=tuple(str(f) for f in job.get("input_files") or ()),
            spec_digest=str(metadata.get(tags.SPEC) or ""),
            attempt=max(1, _int(metadata.get(tags.ATTEMPT), default=1)),
            create_id=str(metadata.get(tags.CREATE_ID) or ""),
            timeout_hours=_int_or_none(metadata.get(tags.TIMEOUT_HOURS)),
            inputs_shown=_json_list(metadata.get(tags.INPUTS)),
            requests_shown=(str(metadata[tags.REQUESTS]) if metadata.get(tags.REQUESTS) else None),
            total_requests=_int(job.get("total_requests")),
            completed_requests=_int(job.get("completed_requests")),
            succeeded_requests=_int(job.get("succeeded_requests")),
            failed_requests=_int(job.get("failed_requests")),
            output_file=job.get("output_file"),
            error_file=job.get("error_file"),
            started_at=_int_or_none(job.get("started_at")),
            completed_at=_int_or_none(job.get("completed_at")),
            seq=seq,
            request_map=_str_or_none(metadata.get(tags.REQUEST_MAP)),
            commit=_str_or_none(metadata.get(tags.COMMIT)),
            plan_id=_str_or_none(metadata.get(tags.PLAN)),
            rerun_of=_str_or_none(metadata.get(tags.RERUN_OF)),
            prompts_shown=(str(metadata[tags.PROMPTS]) if metadata.get(tags.PROMPTS) else None),
        )


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any, default: int = 0) -> int:
    got = _int_or_none(value)
    return default if got is None else got


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return None
    return None


def _json_list(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        loaded = json.loads(value)
    except ValueError:
        return (value,)
    if isinstance(loaded, list) and all(isinstance(x, str) for x in loaded):
        return tuple(loaded)
    return (value,)


@dataclass(frozen=True)
class LiveState:
    """Every managed job of one workspace, oldest first, each id once."""

    workspace: str
    jobs: tuple[LiveJob, ...]
    foreign_seen: int = 0  # jobs the server returned that the client-side filter dropped
    list_calls: int = 0  # how many list requests reading this state took

    def by_name(self) -> dict[str, list[LiveJob]]:
        """Jobs grouped by name, each group oldest first (the last is the current version)."""
        groups: dict[str, list[LiveJob]] = {}
        for job in sorted(self.jobs, key=lambda j: j.sort_key):
            groups.setdefault(job.name, []).append(job)
        return groups


def collect(workspace: str, pages: Sequence[Sequence[Mapping[str, Any]]]) -> LiveState:
    """Build a LiveState from raw list pages: re-filter, de-duplicate by id, sort."""
    seen: dict[str, LiveJob] = {}
    foreign = 0
    position = 0
    for page in pages:
        for raw in page:
            position += 1
            job_id = str(raw.get("id", ""))
            # A job seen twice keeps its first position; the later copy is fresher.
            seq = seen[job_id].seq if job_id in seen else position
            job = LiveJob.from_api(raw, workspace, seq=seq)
            if job is None:
                foreign += 1
                continue
            seen[job.id] = job
    jobs = tuple(sorted(seen.values(), key=lambda j: j.sort_key))
    return LiveState(workspace=workspace, jobs=jobs, foreign_seen=foreign, list_calls=len(pages))


class JobPager(Protocol):
    """What the reader needs of :class:`reconciler.client.MistralClient`."""

    def iter_job_pages(
        self,
        *,
        metadata: Mapping[str, str] | None = ...,
        order_by: str = ...,
        page_size: int = ...,
    ) -> Iterator[list[dict[str, Any]]]: ...


def read_live_state(
    client: JobPager, workspace: str, *, page_size: int = api.PAGE_SIZE
) -> LiveState:
    """Every managed job of ``workspace``: all pages, oldest first, re-filtered, each id once."""
    pages = list(
        client.iter_job_pages(
            metadata={tags.WORKSPACE: workspace}, order_by="created", page_size=page_size
        )
    )
    return collect(workspace, pages)


def find_by_create_id(
    client: JobPager, workspace: str, create_id: str, *, page_size: int = api.PAGE_SIZE
) -> LiveJob | None:
    """The job a create call with this idempotency token made, if it exists.

    Resolves an ``UnknownOutcome`` create: found means the create happened (adopt it),
    None means it did not (safe to send again). Both tags are re-checked here.
    """
    if not create_id:
        raise ValueError("create_id must not be empty")
    pages = client.iter_job_pages(
        metadata={tags.WORKSPACE: workspace, tags.CREATE_ID: create_id},
        order_by="created",
        page_size=page_size,
    )
    found = [job for job in collect(workspace, list(pages)).jobs if job.create_id == create_id]
    return found[0] if found else None
