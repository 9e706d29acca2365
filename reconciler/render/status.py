"""The ``status`` view: one row per managed job name (its current version), as a table or
as a JSON document. Names, digests and ids come from the API: every cell is escaped
(:mod:`reconciler.render.safe`) before the columns are measured."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.api import Status
from reconciler.live import LiveJob
from reconciler.render.safe import json_text, terminal
from reconciler.tags import DIRTY_SUFFIX

STATUS_FORMAT_VERSION: Final = 1
NOT_CREATED: Final = "NOT CREATED"


@dataclass(frozen=True)
class Health:
    """How the current version is doing, beside whether it matches the configuration
    (Argo CD's health beside its sync status)."""

    status: str  # "healthy", "progressing", "degraded" or "missing"
    reason: str = ""  # why, for "degraded" (and "missing")

    def __str__(self) -> str:
        return f"{self.status} ({self.reason})" if self.reason else self.status


@dataclass(frozen=True)
class Row:
    name: str
    current: LiveJob | None  # None: desired but never created
    versions: int  # live versions of this name, the current one included
    sync: str  # "in sync", "spec changed", "retry pending", "not in config", "not created"
    health: Health = Health("missing", "not created")


_ENDED_BADLY: Final = frozenset({Status.FAILED, Status.TIMEOUT_EXCEEDED, Status.CANCELLED})


def sync_state(
    current: LiveJob | None, desired_digest: str | None, max_attempts: int | None = None
) -> str:
    """Whether the current version is what the configuration asks for. A version with the
    desired spec that ended badly, attempts left, is not in sync: the next apply retries it
    (the plan says so too)."""
    if desired_digest is None:
        return "not in config"
    if current is None:
        return "not created"
    if current.spec_digest != desired_digest:
        return "spec changed"
    if current.status in _ENDED_BADLY and current.attempt < (max_attempts or 1):
        return "retry pending"
    return "in sync"


def health(current: LiveJob | None, max_attempts: int | None = None) -> Health:
    """``degraded`` names what went wrong: cancelled outside the reconciler, requests that
    failed in a finished job, or a job that ended badly on its last attempt (the plan warns
    about it and does nothing). ``max_attempts`` is None for a job not in the config."""
    if current is None:
        return Health("missing", "not created")
    job = current
    if job.status in (Status.QUEUED, Status.RUNNING):
        return Health("progressing")
    if job.status is Status.CANCELLATION_REQUESTED:
        if max_attempts is None:
            return Health("progressing", "being removed")
        return Health("degraded", "cancellation requested outside the reconciler")
    if job.status is Status.SUCCESS:
        if job.failed_requests:
            total = job.total_requests or job.failed_requests + job.succeeded_requests
            noun = "request" if total == 1 else "requests"
            return Health("degraded", f"{job.failed_requests} of {total} {noun} failed")
        return Health("healthy")
    what = (
        "cancelled outside the reconciler" if job.status is Status.CANCELLED else (f"{job.status}")
    )
    if max_attempts is None:
        return Health("degraded", what)
    if job.attempt >= max_attempts:
        return Health("degraded", f"{what}; out of attempts ({job.attempt} of {max_attempts})")
    return Health("degraded", f"{what}; retry pending (attempt {job.attempt} of {max_attempts})")


def age(seconds: float) -> str:
    """Like kubectl: 45s, 12m, 5h, 3d."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 2 * 3600:
        return f"{s // 60}m"
    if s < 2 * 86400:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _progress(job: LiveJob) -> str:
    if not job.total_requests:
        return "-"
    pct = 100 * job.completed_requests // job.total_requests
    return f"{job.completed_requests}/{job.total_requests} ({pct}%)"


def render_text(rows: Sequence[Row], *, now: float, color: bool = False, wide: bool = False) -> str:
    """The table; ``wide`` adds where each current version came from (kubectl's ``-o
    wide``): the git commit of its configuration and the plan that created it."""
    if not rows:
        return "No managed jobs, and none in the configuration."
    header: tuple[str, ...] = (
        "NAME",
        "VERSION",
        "STATUS",
        "PROGRESS",
        "AGE",
        "SYNC",
        "HEALTH",
        "JOB ID",
    )
    if wide:
        header += ("COMMIT", "PLAN")
    table: list[tuple[str, ...]] = [header]
    for row in rows:
        job = row.current
        if job is None:
            cells: tuple[str, ...] = (
                row.name,
                "-",
                NOT_CREATED,
                "-",
                "-",
                row.sync,
                str(row.health),
                "-",
            )
            table.append(cells + (("-", "-") if wide else ()))
            continue
        version = job.spec_digest[:8] or "?"
        if job.attempt > 1:
            version += f" #{job.attempt}"
        if row.versions > 1:
            version += f" (+{row.versions - 1} older)"
        cells = (
            row.name,
            version,
            str(job.status),
            _progress(job),
            age(now - job.created_at),
            row.sync,
            str(row.health),
            job.id,
        )
        if wide:
            cells += (_short_commit(job.commit), _short_plan(job.plan_id))
        table.append(cells)
    shown = [tuple(terminal(cell) for cell in r) for r in table]
    widths = [max(len(r[i]) for r in shown) for i in range(len(header))]
    lines = []
    for i, r in enumerate(shown):
        cells_out = [cell.ljust(widths[c]) for c, cell in enumerate(r)]
        if color and i > 0:
            cells_out[2] = _tint(r[2]) + cells_out[2][len(r[2]) :]
            cells_out[6] = _tint_health(r[6]) + cells_out[6][len(r[6]) :]
        lines.append("  ".join(cells_out).rstrip())
    return "\n".join(lines)


def _short_commit(commit: str | None) -> str:
    """``1a2b3c4d5e6f`` (or ``1a2b3c4d5e6f-dirty``) from a full commit tag; ``-`` if none."""
    if not commit:
        return "-"
    sha, dirty, _ = commit.partition(DIRTY_SUFFIX)
    return sha[:12] + (DIRTY_SUFFIX if dirty else "")


def _short_plan(plan_id: str | None) -> str:
    return plan_id[:8] if plan_id else "-"


def _tint_health(text: str) -> str:
    code = {"healthy": "32", "degraded": "31", "progressing": "33", "missing": "2"}.get(
        text.split(" ", 1)[0]
    )
    return f"\x1b[{code}m{text}\x1b[0m" if code else text


def _tint(status: str) -> str:
    code = {
        str(Status.SUCCESS): "32",
        str(Status.FAILED): "31",
        str(Status.TIMEOUT_EXCEEDED): "31",
        str(Status.CANCELLED): "31",
        str(Status.CANCELLATION_REQUESTED): "33",
        NOT_CREATED: "2",
    }.get(status)
    return f"\x1b[{code}m{status}\x1b[0m" if code else status


def render_json(rows: Sequence[Row], *, workspace: str, now: float) -> str:
    doc: dict[str, Any] = {
        "format_version": STATUS_FORMAT_VERSION,
        "workspace": workspace,
        "jobs": [_row_doc(row, now) for row in rows],
    }
    return json_text(json.dumps(doc, indent=2, ensure_ascii=False))


def _row_doc(row: Row, now: float) -> Mapping[str, Any]:
    job = row.current
    doc: dict[str, Any] = {
        "name": row.name,
        "sync": row.sync,
        "health": {"status": row.health.status, "reason": row.health.reason or None},
        "versions": row.versions,
    }
    if job is None:
        doc["current"] = None
        return doc
    doc["current"] = {
        "id": job.id,
        "status": str(job.status),
        "spec_digest": job.spec_digest,
        "attempt": job.attempt,
        "created_at": job.created_at,
        "age_seconds": max(0, int(now - job.created_at)),
        "total_requests": job.total_requests,
        "completed_requests": job.completed_requests,
        "succeeded_requests": job.succeeded_requests,
        "failed_requests": job.failed_requests,
        "output_file": job.output_file,
        "error_file": job.error_file,
        # Provenance: the configuration's git commit and the plan that created the job.
        "commit": job.commit,
        "plan_id": job.plan_id,
    }
    return doc
