"""Resolved desired state: plain, immutable data handed to the planner and the executor.

The loader (``reconciler.config.loader``) produces these; nothing here reads files.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import Any

from reconciler.errors import Location
from reconciler.stream.model import Shard


class OnChange(StrEnum):
    REPLACE = "replace"  # cancel the running old version, start the new one
    WAIT = "wait"  # let the running old version finish first


@dataclass(frozen=True)
class LocalInput:
    """A local JSONL file named in ``inputs``: validated and hashed by the loader."""

    path: str  # relative to the config root, POSIX separators ("data/cheese.jsonl")
    sha256: str  # hex digest of the file's bytes
    size: int  # bytes
    lines: int  # number of requests (non-blank lines)

    @property
    def short(self) -> str:
        """How the plan shows this input: ``data/cheese.jsonl@1a2b3c4d5e6f``."""
        return f"{self.path}@{self.sha256[:12]}"


@dataclass(frozen=True)
class PromptSource:
    """``prompts:``: requests generated from the rows of a local JSONL or CSV file.

    ``rows`` is the rows file as checked by the loader (``lines`` = number of rows, one
    request each). The templates are stored in canonical form (every ``${{ … }}`` spelt
    one way, see :meth:`reconciler.config.templates.Template.canonical`), so that the
    digest covers what the requests are, not how the YAML was written."""

    rows: LocalInput
    format: str  # "jsonl" | "csv"
    custom_id: str  # canonical template text
    body_json: str  # canonical JSON of the body template (template strings canonical)

    @property
    def body(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body_json)
        return loaded

    def identity(self) -> dict[str, Any]:
        """What the generated requests are a function of: the rows' bytes (not their
        path), how they are read, and the templates."""
        return {
            "rows": self.rows.sha256,
            "format": self.format,
            "custom_id": self.custom_id,
            "body": self.body,
        }

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(canonical_json(self.identity()).encode()).hexdigest()

    @property
    def short(self) -> str:
        """How the plan shows it: ``data/cheese.jsonl@1a2b3c4d5e6f template@9f8e7d6c5b4a``."""
        template = hashlib.sha256(
            canonical_json([self.format, self.custom_id, self.body]).encode()
        ).hexdigest()
        return f"{self.rows.short} template@{template[:12]}"


def canonical_json(value: Any) -> str:
    """The one JSON encoding used for digests: key order and whitespace never matter."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class JobSpec:
    """One desired job, with ``defaults`` merged in and paths resolved.

    Exactly one of ``inputs`` / ``input_files`` / ``requests_json`` / ``prompts`` is set, and
    exactly one of ``model`` / ``agent_id`` is set (the loader guarantees both).
    """

    name: str
    endpoint: str
    model: str | None
    agent_id: str | None
    inputs: tuple[LocalInput, ...] = ()
    input_files: tuple[str, ...] = ()
    # Inline requests as canonical JSON (a list of {custom_id?, body}); None when not used.
    requests_json: str | None = None
    metadata: tuple[tuple[str, str], ...] = ()  # user metadata, sorted by key
    timeout_hours: int = 24
    max_attempts: int = 1
    on_change: OnChange = OnChange.REPLACE
    prevent_destroy: bool = False
    history_limit: int | None = None  # None: keep every superseded finished version
    prompts: PromptSource | None = None  # requests generated from rows (``prompts:``)
    source: Location = field(default=Location("<unknown>"), compare=False)
    # Where ``model`` was written (the job, or ``defaults:``), for errors about the model.
    model_source: Location | None = field(default=None, compare=False)
    model_field: str = field(default="", compare=False)
    # Empty unless the job is split (reconciler.stream.shards): then its shards, in order.
    # Not part of identity(): each shard has its own (stream.shards.shard_spec).
    shards: tuple[Shard, ...] = ()
    # For a job expanded from a matrix: its entry and combination, as messages name it
    # ("qa-${{ matrix.model }} [model=mistral-small-latest]"); "" for a written job.
    origin: str = field(default="", compare=False)

    @property
    def metadata_dict(self) -> dict[str, str]:
        return dict(self.metadata)

    @property
    def requests(self) -> list[dict[str, Any]] | None:
        if self.requests_json is None:
            return None
        loaded: list[dict[str, Any]] = json.loads(self.requests_json)
        return loaded

    @property
    def request_count(self) -> int | None:
        """Requests the job will run, when known locally (inputs and inline requests)."""
        if self.requests_json is not None:
            return len(json.loads(self.requests_json))
        if self.inputs:
            return sum(i.lines for i in self.inputs)
        if self.prompts is not None:
            return self.prompts.rows.lines
        return None

    def identity(self) -> dict[str, Any]:
        """The fields that define what the job computes: a change to any of them is a new
        version of the job. Policy fields (max_attempts, on_change, prevent_destroy,
        history_limit) are not part of it: changing them never re-runs a job. Local inputs
        count by content, not by path: renaming a data file changes nothing."""
        identity = self._identity(requests=None)
        if self.requests_json is not None:
            identity["requests"] = json.loads(self.requests_json)
        return identity

    def _identity(self, *, requests: Any) -> dict[str, Any]:
        identity: dict[str, Any] = {
            "endpoint": self.endpoint,
            "model": self.model,
            "agent_id": self.agent_id,
            "inputs": [i.sha256 for i in self.inputs],
            "input_files": list(self.input_files),
            "requests": requests,
            "metadata": dict(self.metadata),
            "timeout_hours": self.timeout_hours,
        }
        # Only present for prompts jobs, so that every other job's digest is unchanged.
        # (A prompts job has no inline requests: the splice in ``digest`` never runs.)
        if self.prompts is not None:
            identity["prompts"] = self.prompts.identity()
        return identity

    @cached_property
    def digest(self) -> str:
        """Canonical digest of :meth:`identity` (hex sha256 of its canonical JSON).

        ``requests_json`` is canonical JSON already, so it is spliced into the text as it
        stands instead of being decoded and encoded again (half of the planner's time at
        scale). The splice point is unique: every value before the ``requests`` key is a
        string, a list of strings or a string map, whose encoding never holds a bare
        ``"requests":null``."""
        text = canonical_json(self._identity(requests=None))
        if self.requests_json is not None:
            text = text.replace('"requests":null', '"requests":' + self.requests_json, 1)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Safety:
    max_destroy: int = 10
    max_cost: Decimal | None = None  # USD per plan; None: no cost limit


@dataclass(frozen=True)
class PriceOverride:
    """One model's entry under ``prices:``: USD at standard rates, None where not given
    (the shipped table's price then stands). Read by ``reconciler.cost.prices``."""

    input: Decimal | None = None  # per 1M input tokens
    output: Decimal | None = None  # per 1M output tokens
    per_1000_pages: Decimal | None = None
    per_1000_annotated_pages: Decimal | None = None
    per_minute: Decimal | None = None
    source: Location = field(default=Location("<unknown>"), compare=False)


@dataclass(frozen=True)
class Limits:
    """The API's limits a job is cut to (``limits:`` in reconciler.yaml).

    Defaults are Mistral's published limits as of 2026-08 (docs: "known limitations" for
    100,000 requests per job and 512 MB per file; the batch FAQ for 1,000,000 pending
    requests per workspace; see shared/mistral-api/NOTES.md). The docs disagree in
    places, hence configurable."""

    max_requests_per_job: int = 100_000
    max_bytes_per_file: int = 512 * 1024 * 1024
    max_pending_requests: int = 1_000_000


DEFAULT_SERVER = "https://api.mistral.ai"
LOCAL_SERVER = "local"


@dataclass(frozen=True)
class DesiredState:
    """Everything a config root asks for."""

    root: str  # absolute path of the config root
    workspace: str
    server: str  # "local", or a URL (already defaulted)
    jobs: tuple[JobSpec, ...]  # sorted by name, names unique
    safety: Safety = Safety()
    limits: Limits = Limits()
    config_file: str = "reconciler.yaml"  # as shown to the user
    files: tuple[str, ...] = ()  # every YAML file read (config first), as shown to the user
    prices: tuple[tuple[str, PriceOverride], ...] = ()  # prices:, sorted by model id

    def by_name(self) -> Mapping[str, JobSpec]:
        return {j.name: j for j in self.jobs}

    def price_overrides(self) -> dict[str, PriceOverride]:
        return dict(self.prices)
