"""The status view's health and sync verdicts, and the wide columns (provenance)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from reconciler.api import Status
from reconciler.live import LiveJob
from reconciler.render import status as view
from reconciler.render.status import Health, Row


def job(status: Status, *, attempt: int = 1, failed: int = 0, total: int = 10) -> LiveJob:
    return LiveJob(
        id="job-1",
        name="a",
        workspace="w",
        status=status,
        created_at=100,
        endpoint="/v1/chat/completions",
        model="m",
        agent_id=None,
        metadata=(),
        input_files=(),
        spec_digest="d" * 64,
        attempt=attempt,
        create_id="c",
        timeout_hours=24,
        inputs_shown=None,
        requests_shown=None,
        total_requests=total,
        completed_requests=total if status.is_terminal else 0,
        succeeded_requests=total - failed,
        failed_requests=failed,
        commit="a" * 40 + "-dirty",
        plan_id="0123456789abcdef",
    )


@pytest.mark.parametrize(
    ("current", "max_attempts", "health", "sync"),
    [
        (job(Status.SUCCESS), 1, Health("healthy"), "in sync"),
        (job(Status.RUNNING), 1, Health("progressing"), "in sync"),
        (
            job(Status.SUCCESS, failed=3),
            1,
            Health("degraded", "3 of 10 requests failed"),
            "in sync",
        ),
        (
            job(Status.CANCELLED),
            1,
            Health("degraded", "cancelled outside the reconciler; out of attempts (1 of 1)"),
            "in sync",
        ),
        (
            job(Status.CANCELLED),
            2,
            Health("degraded", "cancelled outside the reconciler; retry pending (attempt 1 of 2)"),
            "retry pending",
        ),
        (
            job(Status.TIMEOUT_EXCEEDED, attempt=3),
            3,
            Health("degraded", "TIMEOUT_EXCEEDED; out of attempts (3 of 3)"),
            "in sync",
        ),
        (
            job(Status.CANCELLATION_REQUESTED),
            1,
            Health("degraded", "cancellation requested outside the reconciler"),
            "in sync",
        ),
        (job(Status.CANCELLATION_REQUESTED), None, Health("progressing", "being removed"), None),
        (None, 1, Health("missing", "not created"), "not created"),
    ],
)
def test_health_and_sync(
    current: LiveJob | None, max_attempts: int | None, health: Health, sync: str | None
) -> None:
    assert view.health(current, max_attempts) == health
    digest = None if max_attempts is None else "d" * 64
    assert view.sync_state(current, digest, max_attempts) == (sync or "not in config")


def test_wide_adds_commit_and_plan_and_json_has_both() -> None:
    current = job(Status.SUCCESS, failed=1)
    row = Row("a", current, 1, "in sync", view.health(current, 1))
    text = view.render_text([row], now=160, wide=True)
    assert text.splitlines() == [
        "NAME  VERSION   STATUS   PROGRESS      AGE  SYNC     HEALTH                              "
        "JOB ID  COMMIT              PLAN",
        "a     dddddddd  SUCCESS  10/10 (100%)  60s  in sync  degraded (1 of 10 requests failed)"
        "  job-1   aaaaaaaaaaaa-dirty  01234567",
    ]
    doc = json.loads(view.render_json([row], workspace="w", now=160))["jobs"][0]
    assert doc["health"] == {"status": "degraded", "reason": "1 of 10 requests failed"}
    assert (doc["current"]["commit"], doc["current"]["plan_id"]) == (
        current.commit,
        "0123456789abcdef",
    )
    plain = dataclasses.replace(current, commit=None, plan_id=None)
    narrow = view.render_text([Row("a", plain, 1, "in sync", Health("healthy"))], now=160)
    assert "COMMIT" not in narrow and narrow.splitlines()[1].endswith("job-1")
