"""Ownership tags: the reserved ``reconciler.*`` metadata stamped on every job we create.

A live job belongs to a config root iff ``metadata["reconciler.workspace"]`` equals its
workspace. The other tags carry what the planner needs and the API does not echo back:

    reconciler.workspace      ownership scope (the security boundary)
    reconciler.job            the job's name in the config
    reconciler.spec           digest of the resolved spec (JobSpec.digest), inputs' bytes included
    reconciler.attempt        1, 2, ... within one spec (retries after failure)
    reconciler.create-id      unique per create call: the idempotency token
    reconciler.timeout-hours  timeout_hours (not echoed by the API)
    reconciler.inputs         local inputs as JSON ["path@sha12", ...] (for per-field diffs)
    reconciler.requests       inline requests as "N requests, sha256:<12 hex>"
    reconciler.request-map    inline requests one by one (reconciler.requestmap), if it fits
    reconciler.commit         git commit of the config root at plan time ("<sha>-dirty" when
                              the work tree differed); absent outside a git work tree
    reconciler.plan           id of the plan that created the job
    reconciler.rerun-of       the job this one re-runs on request (``--replace NAME``)
    reconciler.prompts        prompts: "<rows path>@<sha12> template@<sha12>" (for diffs)

Every key is at most 32 characters and every value at most 512 (the API's limits).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from reconciler import api, requestmap
from reconciler.config.model import JobSpec, canonical_json

PREFIX: Final = "reconciler."
WORKSPACE: Final = "reconciler.workspace"
JOB: Final = "reconciler.job"
SPEC: Final = "reconciler.spec"
ATTEMPT: Final = "reconciler.attempt"
CREATE_ID: Final = "reconciler.create-id"
TIMEOUT_HOURS: Final = "reconciler.timeout-hours"
INPUTS: Final = "reconciler.inputs"
REQUESTS: Final = "reconciler.requests"
PROMPTS: Final = "reconciler.prompts"
REQUEST_MAP: Final = "reconciler.request-map"
COMMIT: Final = "reconciler.commit"
PLAN: Final = "reconciler.plan"
RERUN_OF: Final = "reconciler.rerun-of"
DIRTY_SUFFIX: Final = "-dirty"  # on a commit whose work tree differed from it

ALL: Final = (WORKSPACE, JOB, SPEC, ATTEMPT, CREATE_ID, TIMEOUT_HOURS, INPUTS, REQUESTS, PROMPTS)
# What a plan can show per request, and where a job came from (issue 11).
DETAIL_AND_PROVENANCE: Final = (REQUEST_MAP, COMMIT, PLAN, RERUN_OF)
assert all(len(k) <= api.METADATA_KEY_MAX for k in (*ALL, *DETAIL_AND_PROVENANCE))


def is_reserved(key: str) -> bool:
    return key.startswith(PREFIX)


def user_metadata(metadata: Mapping[str, Any] | None) -> dict[str, str]:
    """The metadata a user wrote: everything but the reserved keys."""
    if not metadata:
        return {}
    return {str(k): str(v) for k, v in metadata.items() if not is_reserved(str(k))}


def encode_inputs(spec: JobSpec) -> list[str] | None:
    """Local inputs as shown in diffs; None when the job has no local inputs."""
    if not spec.inputs:
        return None
    return [i.short for i in spec.inputs]


def _inputs_tag(shown: list[str]) -> str:
    value = json.dumps(shown, separators=(",", ":"), ensure_ascii=False)
    if len(value) <= api.METADATA_VALUE_MAX:
        return value
    # Too long to spell out: a digest still tells "changed" from "unchanged".
    digest = hashlib.sha256(canonical_json(shown).encode()).hexdigest()[:12]
    return json.dumps([f"{len(shown)} files, sha256:{digest}"])


def encode_requests(spec: JobSpec) -> str | None:
    """Inline requests as shown in diffs; None when the job has no inline requests."""
    if spec.requests_json is None:
        return None
    digest = hashlib.sha256(spec.requests_json.encode()).hexdigest()[:12]
    count = spec.request_count or 0
    return f"{count} request{'s' if count != 1 else ''}, sha256:{digest}"


def encode_prompts(spec: JobSpec) -> str | None:
    """A prompts job's rows and templates as shown in diffs; None for other jobs."""
    if spec.prompts is None:
        return None
    shown = spec.prompts.short
    if len(shown) <= api.METADATA_VALUE_MAX:
        return shown
    return f"{spec.prompts.rows.lines} rows, sha256:{spec.prompts.digest[:12]}"


def build(
    workspace: str,
    spec: JobSpec,
    *,
    attempt: int,
    create_id: str,
    provenance: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The reserved tags for one create call of ``spec``; ``provenance`` adds
    :data:`COMMIT`, :data:`PLAN`, :data:`RERUN_OF` (see :func:`provenance`)."""
    tags = {
        WORKSPACE: workspace,
        JOB: spec.name,
        SPEC: spec.digest,
        ATTEMPT: str(attempt),
        CREATE_ID: create_id,
        TIMEOUT_HOURS: str(spec.timeout_hours),
    }
    shown_inputs = encode_inputs(spec)
    if shown_inputs is not None:
        tags[INPUTS] = _inputs_tag(shown_inputs)
    shown_requests = encode_requests(spec)
    if shown_requests is not None:
        tags[REQUESTS] = shown_requests
        request_map = requestmap.encode(spec.requests or [])
        if request_map is not None:
            tags[REQUEST_MAP] = request_map
    shown_prompts = encode_prompts(spec)
    if shown_prompts is not None:
        tags[PROMPTS] = shown_prompts
    tags.update(provenance or {})
    return tags


def provenance(
    *, plan_id: str | None = None, commit: str | None = None, rerun_of: str | None = None
) -> dict[str, str]:
    """Where a created job comes from: the plan, the config's commit, the job it re-runs.
    Values that would not fit a tag are left out rather than cut."""
    found = {PLAN: plan_id, COMMIT: commit, RERUN_OF: rerun_of}
    return {k: v for k, v in found.items() if v and len(v) <= api.METADATA_VALUE_MAX}


def desired_fields(spec: JobSpec) -> dict[str, Any]:
    """Every user-changeable field of a desired job, as the plan diffs it.

    :func:`reconciler.live.LiveJob.fields` rebuilds the same shape from a live job, so
    the two can be compared with deepdiff field by field.
    """
    shown_inputs = encode_inputs(spec)
    return {
        "endpoint": spec.endpoint,
        "model": spec.model,
        "agent_id": spec.agent_id,
        "metadata": spec.metadata_dict,
        "timeout_hours": spec.timeout_hours,
        "inputs": None if shown_inputs is None else json.loads(_inputs_tag(shown_inputs)),
        "input_files": list(spec.input_files) if spec.input_files else None,
        "requests": encode_requests(spec),
        "prompts": encode_prompts(spec),
    }
