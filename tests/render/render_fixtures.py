"""Hand-built plans for the renderer tests: plain data, no planner involved."""

from __future__ import annotations

from reconciler.api import Status
from reconciler.config.model import JobSpec, LocalInput, OnChange
from reconciler.plan.model import (
    Action,
    Change,
    FieldDiff,
    GuardKind,
    JobRef,
    Note,
    NoteKind,
    Plan,
    Reason,
    Violation,
)

WS = "research-evals"


def ref(
    id: str,
    status: Status,
    *,
    total: int = 0,
    completed: int = 0,
    attempt: int = 1,
    digest: str = "a" * 64,
) -> JobRef:
    return JobRef(
        id=id,
        status=status,
        created_at=1_764_136_800,
        spec_digest=digest,
        attempt=attempt,
        total_requests=total,
        completed_requests=completed,
        succeeded_requests=completed,
        failed_requests=0,
    )


CHEESE = JobSpec(
    name="cheese-eval",
    endpoint="/v1/chat/completions",
    model="mistral-medium-latest",
    agent_id=None,
    inputs=(LocalInput("data/cheese.jsonl", "2" * 64, 2048, 12),),
    metadata=(("dataset", "cheese-v2"), ("team", "research")),
)
WINE = JobSpec(
    name="wine-quick",
    endpoint="/v1/chat/completions",
    model="mistral-small-latest",
    agent_id=None,
    requests_json='[{"body":{"max_tokens":100},"custom_id":"0"}]',
    metadata=(("team", "research"),),
)
NIGHTLY = JobSpec(
    name="nightly",
    endpoint="/v1/ocr",
    model="mistral-ocr-latest",
    agent_id=None,
    input_files=("6f1c0000-file",),
    max_attempts=3,
)


def realistic_plan() -> Plan:
    return Plan(
        workspace=WS,
        changes=(
            Change(
                Action.REPLACE,
                "cheese-eval",
                Reason.SPEC_CHANGED,
                live=ref("job-0001", Status.RUNNING, total=100, completed=40),
                spec=CHEESE,
                attempt=1,
                diffs=(
                    FieldDiff("model", "mistral-small-latest", "mistral-medium-latest"),
                    FieldDiff("metadata.dataset", "cheese-v1", "cheese-v2"),
                    FieldDiff(
                        "inputs[0]",
                        "data/cheese.jsonl@111111111111",
                        "data/cheese.jsonl@222222222222",
                    ),
                ),
                create_id="cid-1",
            ),
            Change(
                Action.CREATE,
                "nightly",
                Reason.RETRY,
                spec=NIGHTLY,
                attempt=2,
                previous=ref("job-0004", Status.FAILED),
                create_id="cid-2",
            ),
            Change(
                Action.CANCEL,
                "old-job",
                Reason.REMOVED,
                live=ref("job-0003", Status.RUNNING, total=50, completed=10),
                then_delete=True,
            ),
            Change(
                Action.DELETE,
                "old-job",
                Reason.REMOVED,
                live=ref("job-0002", Status.SUCCESS, total=50, completed=50),
            ),
            Change(
                Action.CREATE, "wine-quick", Reason.NEW, spec=WINE, attempt=1, create_id="cid-3"
            ),
        ),
        notes=(
            Note(
                "flaky",
                NoteKind.EXHAUSTED,
                ref("job-0007", Status.FAILED, attempt=2),
                "Job job-0007 ended FAILED on attempt 2 and max_attempts is 2: it will not be "
                "retried. Change the job's spec, or raise max_attempts, to run it again.",
            ),
            Note(
                "summary",
                NoteKind.WAITING,
                ref("job-0005", Status.RUNNING, total=10, completed=3),
                "on_change is wait: the new version will be created once job job-0005 (RUNNING) "
                "ends.",
                diffs=(
                    FieldDiff("model", "mistral-small-latest", "mistral-large-latest"),
                    FieldDiff("metadata.owner", None, "ana", added=True),
                ),
            ),
            Note(
                "wine-old",
                NoteKind.DONE,
                ref("job-0006", Status.SUCCESS),
                "Job job-0006 succeeded.",
            ),
        ),
    )


def blocked_plan() -> Plan:
    return Plan(
        workspace=WS,
        changes=(
            Change(
                Action.CANCEL,
                "ocr-archive",
                Reason.REMOVED,
                live=ref("job-0010", Status.QUEUED),
                then_delete=True,
                protected=True,
            ),
            Change(
                Action.DELETE,
                "old-job",
                Reason.REMOVED,
                live=ref("job-0011", Status.CANCELLATION_REQUESTED),
                await_terminal=True,
            ),
        ),
        violations=(
            Violation(
                GuardKind.PREVENT_DESTROY,
                "ocr-archive has prevent_destroy set, but this plan would cancel job job-0010. "
                "prevent_destroy cannot be overridden by --allow-destroy: remove it from the "
                "job's configuration first, if the job really should go.",
                ("ocr-archive",),
            ),
            Violation(
                GuardKind.EMPTY_DESIRED,
                "The configuration declares no jobs, so this plan would cancel or delete every "
                "managed job of workspace research-evals (2 live jobs). If that is intended, "
                "re-run with --allow-destroy=2 (or use `reconciler destroy`).",
                ("ocr-archive", "old-job"),
            ),
        ),
    )


def many_creates(n: int) -> Plan:
    """n new jobs with long metadata: a plan far over GitHub's comment limit."""
    changes = tuple(
        Change(
            Action.CREATE,
            f"job-{i:05}",
            Reason.NEW,
            spec=JobSpec(
                name=f"job-{i:05}",
                endpoint="/v1/chat/completions",
                model="mistral-small-latest",
                agent_id=None,
                input_files=(f"file-{i:05}",),
                metadata=(("description", "x" * 200), ("team", "research")),
                on_change=OnChange.WAIT,
            ),
            attempt=1,
            create_id=f"cid-{i}",
        )
        for i in range(n)
    )
    return Plan(workspace=WS, changes=changes)
