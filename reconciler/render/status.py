"""The ``status`` view: one row per managed job name (its current version), as a table or
as a JSON document."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from reconciler.api import Status
from reconciler.live import LiveJob

STATUS_FORMAT_VERSION: Final = 1
NOT_CREATED: Final = "NOT CREATED"


@dataclass(frozen=True)
class Row:
    name: str
    current: LiveJob | None  # None: desired but never created
    versions: int  # live versions of this name, the current one included
    sync: str  # "in sync", "spec changed", "not in config", "not created"


def sync_state(current: LiveJob | None, desired_digest: str | None) -> str:
    if desired_digest is None:
        return "not in config"
    if current is None:
        return "not created"
    return "in sync" if current.spec_digest == desired_digest else "spec changed"


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


def render_text(rows: Sequence[Row], *, now: float, color: bool = False) -> str:
    if not rows:
        return "No managed jobs, and none in the configuration."
    header = ("NAME", "VERSION", "STATUS", "PROGRESS", "AGE", "SYNC", "JOB ID")
    table: list[tuple[str, ...]] = [header]
    for row in rows:
        job = row.current
        if job is None:
            table.append((row.name, "-", NOT_CREATED, "-", "-", row.sync, "-"))
            continue
        version = job.spec_digest[:8] or "?"
        if job.attempt > 1:
            version += f" #{job.attempt}"
        if row.versions > 1:
            version += f" (+{row.versions - 1} older)"
        table.append(
            (
                row.name,
                version,
                str(job.status),
                _progress(job),
                age(now - job.created_at),
                row.sync,
                job.id,
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for i, r in enumerate(table):
        cells = [cell.ljust(widths[c]) for c, cell in enumerate(r)]
        if color and i > 0:
            cells[2] = _tint(r[2]) + cells[2][len(r[2]) :]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


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
    return json.dumps(doc, indent=2, ensure_ascii=False)


def _row_doc(row: Row, now: float) -> Mapping[str, Any]:
    job = row.current
    doc: dict[str, Any] = {"name": row.name, "sync": row.sync, "versions": row.versions}
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
    }
    return doc
