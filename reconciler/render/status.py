"""The ``status`` view: one row per managed job name (its current version), as a table or
as a JSON document. Names, digests and ids come from the API: every cell is escaped
(:mod:`reconciler.render.safe`) before the columns are measured."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final

from reconciler.api import Status
from reconciler.cost.money import format_usd, total
from reconciler.live import LiveJob

if TYPE_CHECKING:
    from reconciler.cost.actuals import Usage
    from reconciler.cost.estimate import Estimate
    from reconciler.cost.pricing import Cost
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
class RowCost:
    """``status --cost``: the current version's estimate (when it runs the configured
    spec) and, once it finished, what its results report it used."""

    estimate: Estimate | None = None  # None: not the configured spec, or not readable
    estimated: Cost | None = None
    unread: str | None = None  # why there is no estimate (input_files are not read)
    usage: Usage | None = None  # None: not finished, or no output file
    actual: Cost | None = None
    estimate_error: str | None = None  # why the requests could not be read
    actual_error: str | None = None  # why the output file could not be read


@dataclass(frozen=True)
class Row:
    name: str
    current: LiveJob | None  # None: desired but never created
    versions: int  # live versions of this name, the current one included
    sync: str  # "in sync", "spec changed", "retry pending", "not in config", "not created"
    health: Health = Health("missing", "not created")
    cost: RowCost | None = None  # only with status --cost


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


def render_text(
    rows: Sequence[Row], *, now: float, color: bool = False, wide: bool = False, cost: bool = False
) -> str:
    """The table; ``wide`` adds where each current version came from (kubectl's ``-o
    wide``): the git commit of its configuration and the plan that created it; ``cost``
    the estimate beside what finished jobs actually used (ESTIMATE, ACTUAL), and totals."""
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
    if cost:
        header += ("ESTIMATE", "ACTUAL")
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
            table.append(
                cells + (("-", "-") if wide else ()) + (_cost_cells(row.cost) if cost else ())
            )
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
        if cost:
            cells += _cost_cells(row.cost)
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
    if cost:
        lines.extend(["", cost_summary(rows)])
        for row in rows:
            rc = row.cost
            for what, error in (
                ("estimate", rc.estimate_error if rc else None),
                ("actual", rc.actual_error if rc else None),
            ):
                if error is not None:
                    lines.append(terminal(f"{row.name}: {what} unavailable: {error}"))
    return "\n".join(lines)


def _usd(c: Cost | None, method: str = "exact") -> str | None:
    if c is None or c.total is None:
        return None
    return ("≈ " if method == "heuristic" else "") + format_usd(c.total)


def estimate_cell(rc: RowCost | None) -> str:
    """``≈ $0.0042 (14 in + ≤ 20 out)``; ``unknown`` / ``unpriced`` spelt out; ``-``."""
    if rc is not None and rc.estimate_error is not None:
        return "unavailable"
    if rc is None or rc.estimate is None:
        return "unknown (input_files)" if rc is not None and rc.unread else "-"
    e = rc.estimate
    bound = "" if e.unbounded else "≤ "
    tokens = f"{e.input_tokens:,} in + {bound}{e.output_tokens:,} out"
    if e.total_pages:
        tokens = f"{e.total_pages:,} pages"
    amount = _usd(rc.estimated, e.method)
    if amount is None:
        return f"unpriced ({tokens})"
    return f"{amount} ({tokens})"


def actual_cell(rc: RowCost | None) -> str:
    """``$0.0040 (16 in + 20 out)`` from the results' usage; ``-`` when not finished."""
    if rc is not None and rc.actual_error is not None:
        return "unavailable"
    if rc is None or rc.usage is None:
        return "-"
    u = rc.usage
    tokens = f"{u.prompt_tokens:,} in + {u.completion_tokens:,} out"
    if u.pages or u.annotated_pages:
        tokens = f"{u.pages + u.annotated_pages:,} pages"
    amount = _usd(rc.actual)
    return f"{amount or 'unpriced'} ({tokens})"


def _cost_cells(rc: RowCost | None) -> tuple[str, str]:
    return estimate_cell(rc), actual_cell(rc)


def _pct(actual: int | Decimal, estimated: int | Decimal) -> str:
    if not estimated:
        return "n/a"
    return f"{(Decimal(actual) - Decimal(estimated)) / Decimal(estimated) * 100:+.1f} %"


def cost_summary(rows: Sequence[Row]) -> str:
    """The line under ``status --cost``: estimate and actuals of the finished jobs that
    have both, and how far apart they are (tokens and money)."""
    both = [
        r.cost
        for r in rows
        if r.cost is not None
        and r.cost.usage is not None
        and r.cost.estimate is not None
        and r.cost.actual is not None
        and r.cost.actual.total is not None
        and r.cost.estimated is not None
        and r.cost.estimated.total is not None
    ]
    finished = sum(1 for r in rows if r.current is not None and r.current.status.is_terminal)
    if not both:
        jobs = f"{finished} finished job{'s' if finished != 1 else ''}"
        return f"Cost: {jobs}, none with both an estimate and actual usage."
    est_in = sum(c.estimate.input_tokens for c in both if c.estimate is not None)
    est_out = sum(c.estimate.output_tokens for c in both if c.estimate is not None)
    act_in = sum(c.usage.prompt_tokens for c in both if c.usage is not None)
    act_out = sum(c.usage.completion_tokens for c in both if c.usage is not None)
    estimated = total([t for c in both if c.estimated and (t := c.estimated.total) is not None])
    actual = total([t for c in both if c.actual and (t := c.actual.total) is not None])
    jobs = f"{len(both)} finished job{'s' if len(both) != 1 else ''}"
    return (
        f"Cost of {jobs}: estimated {format_usd(estimated)} ({est_in:,} in + {est_out:,} out),"
        f" actual {format_usd(actual)} ({act_in:,} in + {act_out:,} out); actual vs estimate:"
        f" input tokens {_pct(act_in, est_in)}, output tokens {_pct(act_out, est_out)},"
        f" cost {_pct(actual, estimated)}"
    )


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


def _cost_doc(rc: RowCost) -> dict[str, Any]:
    def amount(c: Cost | None) -> str | None:
        return None if c is None or c.total is None else str(c.total)

    estimate = None
    if rc.estimate is not None:
        estimate = {
            **asdict(rc.estimate),
            "cost": amount(rc.estimated),
            "priced": rc.estimated is not None and rc.estimated.priced,
            "text": estimate_cell(rc),
        }
    actual = None
    if rc.usage is not None:
        u = rc.usage
        actual = {
            "results": u.results,
            "with_usage": u.with_usage,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "pages": u.pages,
            "annotated_pages": u.annotated_pages,
            "audio_seconds": str(u.audio_seconds),
            "cost": amount(rc.actual),
            "priced": rc.actual is not None and rc.actual.priced,
            "text": actual_cell(rc),
        }
    price_date = next((c.price_date for c in (rc.estimated, rc.actual) if c is not None), None)
    return {
        "currency": "USD",
        "price_date": price_date,
        "estimate": estimate,
        "unread": rc.unread,
        "actual": actual,
        "errors": [e for e in (rc.estimate_error, rc.actual_error) if e is not None],
    }


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
    if row.cost is not None:  # status --cost
        doc["cost"] = _cost_doc(row.cost)
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
