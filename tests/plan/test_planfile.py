"""Plan files: a faithful round trip, no secrets, clear errors, and the staleness check that
refuses a plan whose live state moved on, including the same plan applied twice."""

from __future__ import annotations

import dataclasses
import itertools
import json
import stat
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_factories import MEDIUM, WS, changed, live, local_input, spec
from plan_worlds import decode, desired_sets, raw_states, simulate_apply

from reconciler.api import Status
from reconciler.config.model import JobSpec
from reconciler.errors import ExitCode, Location, StalePlanError
from reconciler.live import LiveJob
from reconciler.plan import planfile
from reconciler.plan.model import Plan, Reason
from reconciler.plan.planfile import PlanContext, PlanFileError, SavedPlan
from reconciler.plan.planner import Policy, plan

POLICY = Policy(max_destroy=5, allow_destroy=None, protected=frozenset({"ocr-archive"}))


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"cid-{next(counter)}"


def world() -> tuple[list[JobSpec], list[LiveJob]]:
    cheese = spec(
        "cheese-eval",
        inputs=[local_input("data/cheese.jsonl", "1")],
        metadata={"dataset": "cheese-v1"},
        history_limit=0,
    )
    wine = spec(
        "wine-quick",
        requests_json='[{"body":{"messages":[{"content":"Best French wine?","role":"user"}]},'
        '"custom_id":"0"}]',
    )
    wine = dataclasses.replace(wine, source=Location("jobs/wine.yaml", 3, 3))
    old = spec("old-job")
    desired = [changed(cheese, model=MEDIUM), wine]
    jobs = [
        live(cheese, "job-0001", Status.RUNNING, at=10, total=100, completed=40),
        live(old, "job-0002", Status.SUCCESS, at=5),
        live(old, "job-0003", Status.RUNNING, at=11),
    ]
    return desired, jobs


def made(tmp_path: Path) -> tuple[Path, Plan, PlanContext, list[LiveJob]]:
    desired, jobs = world()
    p = plan(desired, jobs, POLICY, workspace=WS).with_create_ids(ids())
    context = PlanContext(
        server="local",
        config_digest=planfile.config_digest(desired, POLICY),
        desired=tuple(desired),
        policy=POLICY,
        created_at="2026-11-26T06:00:00+00:00",
    )
    path = tmp_path / "plan.json"
    planfile.save(p, path, context=context)
    return path, p, context, jobs


def test_round_trip_is_exact(tmp_path: Path) -> None:
    path, p, context, _ = made(tmp_path)
    saved = planfile.load(path)
    assert saved == SavedPlan(plan=p, context=context)
    # Sources are not compared by JobSpec equality; they survive anyway.
    assert saved.context.desired[1].source == Location("jobs/wine.yaml", 3, 3)
    assert [c.create_id for c in saved.plan.changes if c.spec] == ["cid-1", "cid-2"]


def test_the_file_holds_what_apply_needs(tmp_path: Path) -> None:
    path, *_ = made(tmp_path)
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["format_version"], doc["workspace"]) == ("reconciler-plan", 1, WS)
    assert doc["created_at"] == "2026-11-26T06:00:00+00:00"
    cheese, wine = doc["desired"]
    assert cheese["inputs"] == [
        {"path": "data/cheese.jsonl", "sha256": "1" * 64, "size": 1000, "lines": 10}
    ]
    assert wine["requests"][0]["body"]["messages"][0]["content"] == "Best French wine?"
    assert {j["id"] for j in doc["relied_on"]} == {"job-0001", "job-0002", "job-0003"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".plan.json.*"))  # no temporary file left behind


def test_no_secret_reaches_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-SECRET123")
    desired, jobs = world()
    p = plan(desired, jobs, POLICY, workspace=WS).with_create_ids(ids())
    context = PlanContext(
        server="https://ci:sk-SECRET123@api.example.com/v1?token=sk-SECRET123",
        config_digest="c" * 64,
        desired=tuple(desired),
        policy=POLICY,
    )
    path = tmp_path / "plan.json"
    planfile.save(p, path, context=context)
    text = path.read_text()
    assert "SECRET" not in text
    assert json.loads(text)["server"] == "https://api.example.com/v1"


def test_saving_needs_create_ids(tmp_path: Path) -> None:
    desired, jobs = world()
    p = plan(desired, jobs, POLICY, workspace=WS)
    context = PlanContext("local", "", tuple(desired), POLICY)
    with pytest.raises(ValueError, match="create id"):
        planfile.save(p, tmp_path / "plan.json", context=context)
    assert not (tmp_path / "plan.json").exists()


def test_config_digest_follows_the_config() -> None:
    desired, _ = world()
    base = planfile.config_digest(desired, POLICY)
    assert base == planfile.config_digest(list(reversed(desired)), POLICY)
    assert base != planfile.config_digest(desired[:1], POLICY)
    assert base != planfile.config_digest(
        [dataclasses.replace(desired[0], history_limit=3), desired[1]], POLICY
    )
    assert base != planfile.config_digest(desired, dataclasses.replace(POLICY, max_destroy=6))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format_version=2), "plan format version 2; this reconciler reads"),
        (lambda d: d.update(format="terraform"), "is not a reconciler plan file"),
        (lambda d: d["desired"][0].update(model="other"), "does not match its digest"),
        (lambda d: d["plan"]["changes"][0].update(action="explode"), "unknown action 'explode'"),
        (lambda d: d["plan"]["changes"][0].update(then_delete="yes"), "'then_delete' should be"),
        (lambda d: d["desired"].pop(0), "the spec to create for cheese-eval is missing"),
    ],
)
def test_damaged_or_edited_files_are_refused(tmp_path: Path, edit: Any, message: str) -> None:
    path, *_ = made(tmp_path)
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match=message):
        planfile.load(path)


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read plan file"):
        planfile.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PlanFileError, match="not a plan file"):
        planfile.load(tmp_path / "bad.json")


# -- staleness ---------------------------------------------------------------------------


def test_a_fresh_plan_is_not_stale_even_if_progress_moved(tmp_path: Path) -> None:
    path, _, _, jobs = made(tmp_path)
    saved = planfile.load(path)
    moved = [dataclasses.replace(j, completed_requests=j.completed_requests + 7) for j in jobs]
    assert planfile.stale_reasons(saved.plan, planfile.replan(saved, moved)) == []
    planfile.ensure_fresh(saved, moved)  # does not raise


def test_stale_reasons_say_what_changed(tmp_path: Path) -> None:
    path, _, _, jobs = made(tmp_path)
    saved = planfile.load(path)
    cancelling = {"job-0003": Status.CANCELLATION_REQUESTED, "job-0001": Status.SUCCESS}
    moved = [dataclasses.replace(j, status=cancelling.get(j.id, j.status)) for j in jobs]
    extra = live(spec("surprise"), "job-0009", Status.SUCCESS, at=20)
    fresh = planfile.replan(saved, [*moved, extra])
    assert planfile.stale_reasons(saved.plan, fresh) == [
        "cheese-eval: the plan would replace job job-0001, then delete it, now it would "
        "create a new job (attempt 1) and delete job job-0001",
        "old-job: the plan would cancel job job-0003, then delete it and delete job job-0002, "
        "now it would delete job job-0002 and delete job job-0003 once cancelled",
        "surprise: the plan would do nothing, now it would delete job job-0009",
    ]


def test_same_job_same_action_different_reason_names_the_reasons() -> None:
    s = spec("evals", history_limit=0)
    job = live(s, "j1", Status.SUCCESS)
    saved = plan([changed(s, model=MEDIUM), spec("other")], [job], Policy(), workspace=WS)
    fresh = plan([spec("other")], [job], Policy(), workspace=WS)
    assert planfile.stale_reasons(saved, fresh) == [
        "evals: the plan would create a new job (attempt 1) and delete job j1, now it would "
        "delete job j1"
    ]
    relabelled = dataclasses.replace(
        fresh,
        changes=tuple(
            dataclasses.replace(c, reason=Reason.HISTORY_LIMIT) if c.live else c
            for c in fresh.changes
        ),
    )
    assert planfile.stale_reasons(fresh, relabelled) == [
        "evals: the plan would delete job j1 (removed from configuration), now it would "
        "delete it (old version beyond history_limit)"
    ]


def test_applying_the_same_plan_twice_is_refused(tmp_path: Path) -> None:
    path, _, _, jobs = made(tmp_path)
    saved = planfile.load(path)
    planfile.ensure_fresh(saved, jobs)
    after = simulate_apply(saved.plan, jobs, Status.CANCELLED)
    with pytest.raises(StalePlanError) as caught:
        planfile.ensure_fresh(saved, after)
    assert caught.value.exit_code is ExitCode.STALE
    message = str(caught.value)
    assert message.startswith("Saved plan is stale: live jobs changed since it was made")
    assert (
        "  - wine-quick: the plan would create a new job (attempt 1), now it would do nothing"
        in (message)
    )
    assert message.endswith("Run `reconciler plan` again and review the new plan.")


def test_another_workspace_is_stale() -> None:
    p = plan([spec("a")], [], Policy(), workspace=WS)
    q = plan([spec("a")], [], Policy(), workspace="elsewhere")
    assert planfile.stale_reasons(p, q) == [f"the plan is for workspace {WS}, not elsewhere"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    desired_sets(), raw_states(), st.sampled_from([Status.CANCELLATION_REQUESTED, Status.CANCELLED])
)
def test_any_plan_holds_until_applied_and_is_stale_after(
    desired: list[JobSpec], raws: list[dict[str, Any]], cancelled: Status
) -> None:
    jobs = decode(raws)
    policy = Policy(max_destroy=1_000)
    p = plan(desired, jobs, policy, workspace=WS)
    saved = SavedPlan(p, PlanContext("local", "", tuple(desired), policy))
    assert planfile.stale_reasons(p, planfile.replan(saved, jobs)) == []
    after = simulate_apply(p, jobs, cancelled)
    reasons = planfile.stale_reasons(p, planfile.replan(saved, after))
    assert bool(reasons) == p.has_changes
    assert len(reasons) == len({c.name for c in p.changes})


def test_targeting_provenance_and_request_diffs_survive_the_round_trip(tmp_path: Path) -> None:
    from reconciler.plan.selection import Selection

    before = spec("qa", requests_json='[{"body":{"max_tokens":5},"custom_id":"0"}]')
    after = spec("qa", requests_json='[{"body":{"max_tokens":6},"custom_id":"0"}]')
    other = spec("other")
    policy = Policy(selection=Selection(targets=("q*",), excludes=("z",), replace=("qa",)))
    jobs = [live(before, "job-1", Status.RUNNING), live(other, "job-2")]
    p = (
        plan([after, other], jobs, policy, workspace=WS)
        .with_create_ids(ids())
        .with_provenance(plan_id="plan-1", commit="c" * 40 + "-dirty")
    )
    (change,) = p.changes
    assert change.diffs[0].requests is not None  # the live job's request map was read
    assert p.targeting is not None and p.targeting.selected == ("qa",)
    context = PlanContext("local", "", (after, other), policy, created_at="2026-01-01T00:00:00")
    planfile.save(p, tmp_path / "p.json", context=context)
    saved = planfile.load(tmp_path / "p.json")
    assert saved.plan == p and saved.context.policy == policy
    # Applied later, it plans only its targets again: still fresh.
    planfile.ensure_fresh(saved, jobs)
    # An edited request diff is refused like any other damage.
    doc = json.loads((tmp_path / "p.json").read_text())
    doc["plan"]["changes"][0]["diffs"][0]["requests"]["added"] = -1
    (tmp_path / "p.json").write_text(json.dumps(doc))
    with pytest.raises(PlanFileError, match="requests diff"):
        planfile.load(tmp_path / "p.json")
