"""``examples/ci/forge.py`` against a fake GitHub and GitLab: one plan comment per pull
(merge) request, updated in place; the merged request's plan found and downloaded."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from gitops.fake_forge import GITHUB_TOKEN, GITLAB_TOKEN, FakeForge, zip_folder
from gitops.support import CiRepo

MARKER = "<!-- reconciler-plan: support-analytics -->"
HEAD = "a1" * 20  # the pull request's head commit
MERGE = "b2" * 20  # the merge commit on main
WORKFLOW = ".github/workflows/reconciler.yml"


def github_env(forge: FakeForge, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": forge.url,
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_TOKEN": GITHUB_TOKEN,
        "GITHUB_WORKFLOW_REF": f"o/r/{WORKFLOW}@refs/heads/main",
        **extra,
    }


def gitlab_env(forge: FakeForge, **extra: str) -> dict[str, str]:
    return {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": f"{forge.url}/api/v4",
        "CI_PROJECT_ID": "42",
        "GITLAB_API_TOKEN": GITLAB_TOKEN,
        **extra,
    }


def write_comment(repo: CiRepo, body: str) -> Path:
    path = repo.path / "comment.md"
    path.write_text(body)
    return path


def test_github_comment_is_created_once_then_updated_in_place(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    state = fake_forge.state
    # 150 comments of people (two pages), one of them quoting the marker mid-text.
    state.comments = [{"id": i, "body": f"lgtm {i}", "user": {"type": "User"}} for i in range(150)]
    state.comments[3]["body"] = f"why does {MARKER} say that?"
    env = github_env(fake_forge, PR_NUMBER="7")

    first = write_comment(offline_repo, f"{MARKER}\n### plan 1\n")
    made = offline_repo.forge("comment", str(first), **env)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created comment ")
    # Another pull request's workspace has its own comment.
    other = write_comment(offline_repo, "<!-- reconciler-plan: other -->\n### other\n")
    assert offline_repo.forge("comment", str(other), **env).returncode == 0

    second = write_comment(offline_repo, f"{MARKER}\n### plan 2\n")
    updated = offline_repo.forge("comment", str(second), **env)
    assert updated.returncode == 0, updated.stderr
    assert updated.stdout.startswith("updated comment ")

    ours = [c for c in state.comments if c["body"].startswith(MARKER)]
    assert [c["body"] for c in ours] == [f"{MARKER}\n### plan 2\n"]
    assert len(state.comments) == 152
    assert state.comments[3]["body"] == f"why does {MARKER} say that?"
    # The comments were read page by page (the marker comment is on page 2).
    assert any("page=2" in seen.path for seen in state.seen)
    assert GITHUB_TOKEN not in made.stdout + made.stderr + updated.stdout + updated.stderr


def test_github_pull_request_number_comes_from_the_event(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    event = offline_repo.path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7}}))
    body = write_comment(offline_repo, f"{MARKER}\nplan\n")
    done = offline_repo.forge(
        "comment", str(body), **github_env(fake_forge, GITHUB_EVENT_PATH=str(event))
    )
    assert done.returncode == 0, done.stderr
    assert len(fake_forge.state.comments) == 1


def test_a_comment_without_the_marker_is_refused(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    body = write_comment(offline_repo, "### Reconciler plan\n")
    refused = offline_repo.forge("comment", str(body), **github_env(fake_forge, PR_NUMBER="7"))
    assert refused.returncode == 1
    assert "must start with a '<!-- reconciler-plan: ... -->' line" in refused.stderr
    assert fake_forge.state.seen == []


def test_gitlab_note_is_created_once_then_updated_in_place(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    state = fake_forge.state
    state.notes = [
        {"id": 1, "body": f"{MARKER}\nsystem notes are never ours", "system": True},
        {"id": 2, "body": "please rebase", "system": False},
    ]
    env = gitlab_env(fake_forge, CI_MERGE_REQUEST_IID="5")
    for n in (1, 2, 3):
        body = write_comment(offline_repo, f"{MARKER}\n### plan {n}\n")
        done = offline_repo.forge("comment", str(body), **env)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("created note" if n == 1 else "updated note")
    ours = [n for n in state.notes if not n["system"] and n["body"].startswith(MARKER)]
    assert [n["body"] for n in ours] == [f"{MARKER}\n### plan 3\n"]
    assert state.notes[0]["body"] == f"{MARKER}\nsystem notes are never ours"
    assert {seen.method for seen in state.seen} == {"GET", "POST", "PUT"}


def saved_plan(folder: Path) -> Path:
    """What reconcile.sh plan leaves for the artifact (content is opaque to forge.py)."""
    folder.mkdir(parents=True)
    (folder / "plan.tfplan").write_text('{"format": "reconciler-plan"}\n')
    (folder / "tree").write_text("c3" * 20 + "\n")
    (folder / "comment.md").write_text(f"{MARKER}\n")
    return folder


def github_run(
    forge: FakeForge,
    run_id: int,
    *,
    event: str = "pull_request",
    repo: str = "o/r",
    head_repo: str = "o/r",
    path: str = WORKFLOW,
    head: str = HEAD,
) -> None:
    """A workflow run as ``GET /repos/{repo}/actions/runs/{id}`` describes it."""
    forge.state.runs[run_id] = {
        "id": run_id,
        "event": event,
        "path": path,
        "head_sha": head,
        "repository": {"full_name": repo},
        "head_repository": {"full_name": head_repo},
    }


def github_artifact(
    forge: FakeForge,
    artifact_id: int,
    run_id: int | None,
    created_at: str,
    archive: bytes,
    *,
    expired: bool = False,
) -> None:
    """An artifact named for HEAD, uploaded by run ``run_id`` (None: no run named)."""
    made_by = None if run_id is None else {"id": run_id, "head_sha": HEAD}
    forge.state.artifacts.append(
        {"id": artifact_id, "name": f"reconciler-plan-{HEAD}", "expired": expired,
         "created_at": created_at, "workflow_run": made_by, "_zip": archive}
    )  # fmt: skip


def merged_pull(forge: FakeForge) -> None:
    forge.state.pulls_of_commit[MERGE] = [
        {"number": 6, "merged_at": None, "head": {"sha": "d4" * 20}},
        {"number": 7, "merged_at": "2024-05-01T10:00:00Z", "merge_commit_sha": MERGE,
         "head": {"sha": HEAD}},
    ]  # fmt: skip


def test_github_fetches_the_plan_of_the_merged_pull_requests_head(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    state = fake_forge.state
    plan_dir = saved_plan(offline_repo.path / "made")
    merged_pull(fake_forge)
    older = saved_plan(offline_repo.path / "older")
    (older / "tree").write_text("old\n")
    for run_id in (501, 502, 503):
        github_run(fake_forge, run_id)
    github_artifact(fake_forge, 11, 501, "2024-05-01T09:00:00Z", zip_folder(older))
    github_artifact(fake_forge, 12, 502, "2024-05-01T09:30:00Z", zip_folder(plan_dir))
    github_artifact(fake_forge, 13, 503, "2024-05-01T09:45:00Z", b"gone", expired=True)

    fetched = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == (
        f"fetched the plan of pull request #7 (head {HEAD[:12]}, run 502) into got"
    )
    got = offline_repo.path / "got"
    assert sorted(p.name for p in got.iterdir()) == ["comment.md", "plan.tfplan", "tree"]
    assert (got / "tree").read_text() == (plan_dir / "tree").read_text()  # the newest
    # The redirect to storage was followed without the token.
    storage = [seen for seen in state.seen if seen.path.startswith("/storage/")]
    assert len(storage) == 1
    assert "authorization" not in storage[0].headers


def test_github_refuses_a_commit_that_no_pull_request_merged(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    refused = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert refused.returncode == 1
    assert "did not come from a merged pull request: there is no reviewed plan" in refused.stderr


def test_github_refuses_when_the_last_plan_left_no_artifact(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    fake_forge.state.pulls_of_commit[MERGE] = [
        {"number": 7, "merged_at": "2024-05-01T10:00:00Z", "head": {"sha": HEAD}}
    ]
    refused = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert refused.returncode == 1
    assert f"no artifact reconciler-plan-{HEAD}" in refused.stderr
    assert "failed, was blocked, or expired. Nothing was applied." in refused.stderr
    assert not (offline_repo.path / "got").exists()


def gitlab_merged(fake_forge: FakeForge, repo: CiRepo, newest_status: str) -> Path:
    state = fake_forge.state
    plan_dir = saved_plan(repo.path / "made")
    state.mrs_of_commit[MERGE] = [
        {"iid": 5, "state": "merged", "merge_commit_sha": MERGE, "sha": HEAD,
         "source_project_id": 42, "target_project_id": 42},
    ]  # fmt: skip
    state.pipelines = [
        {"id": 301, "sha": HEAD, "status": newest_status, "project_id": 42,
         "source": "merge_request_event"},
        {"id": 300, "sha": "e5" * 20, "status": "success", "project_id": 42,
         "source": "merge_request_event"},
    ]  # fmt: skip
    state.jobs[301] = [
        {"id": 9001, "name": "test", "status": "success"},
        {"id": 9002, "name": "reconciler-plan", "status": "success"},
    ]
    # GitLab keeps the artifact's paths: reconciler-plan/plan.tfplan.
    state.job_zips[9002] = zip_folder(plan_dir, prefix="reconciler-plan/")
    return plan_dir


def test_gitlab_fetches_the_plan_of_the_merge_requests_newest_pipeline(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    plan_dir = gitlab_merged(fake_forge, offline_repo, "success")
    fetched = offline_repo.forge("fetch-plan", "got", **gitlab_env(fake_forge, CI_COMMIT_SHA=MERGE))
    assert fetched.returncode == 0, fetched.stderr
    assert f"merge request !5 (head {HEAD[:12]}, pipeline 301)" in fetched.stdout
    got = offline_repo.path / "got"
    assert (got / "plan.tfplan").read_bytes() == (plan_dir / "plan.tfplan").read_bytes()
    assert all(seen.headers.get("private-token") == GITLAB_TOKEN for seen in fake_forge.state.seen)


def test_gitlab_refuses_when_the_newest_pipeline_did_not_succeed(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    gitlab_merged(fake_forge, offline_repo, "failed")
    refused = offline_repo.forge("fetch-plan", "got", **gitlab_env(fake_forge, CI_COMMIT_SHA=MERGE))
    assert refused.returncode == 1
    assert "newest pipeline of merge request !5 (301) is failed" in refused.stderr


def test_bad_token_and_missing_settings_fail_clearly(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    body = write_comment(offline_repo, f"{MARKER}\n")
    env = github_env(fake_forge, PR_NUMBER="7", GITHUB_TOKEN="wrong-token-123456")
    denied = offline_repo.forge("comment", str(body), **env)
    assert denied.returncode == 1
    assert "HTTP 401: " in denied.stderr and "wrong-token" not in denied.stderr
    nowhere = offline_repo.forge("comment", str(body))
    assert nowhere.returncode == 1
    assert "not on GitHub Actions or GitLab CI" in nowhere.stderr
    unset = offline_repo.forge("comment", str(body), GITHUB_ACTIONS="true")
    assert unset.returncode == 1 and "GITHUB_TOKEN is not set" in unset.stderr


@pytest.mark.parametrize("names", [["a/plan.tfplan", "b/plan.tfplan"], ["tree"]])
def test_an_artifact_without_exactly_one_plan_is_refused(
    offline_repo: CiRepo, fake_forge: FakeForge, names: list[str]
) -> None:
    archive = offline_repo.path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in names:
            zf.writestr(name, "x")
    merged_pull(fake_forge)
    github_run(fake_forge, 501)
    github_artifact(fake_forge, 11, 501, "2024-05-01T09:00:00Z", archive.read_bytes())
    refused = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert refused.returncode == 1
    assert "plan.tfplan files, not 1" in refused.stderr


# -- planted artifacts: only the base repository's own run for the reviewed head counts -----


PLANTED_RUNS: dict[str, dict[str, str]] = {
    "a fork's pull request": {"head_repo": "mallory/r"},
    "another repository": {"repo": "mallory/r", "head_repo": "mallory/r"},
    "another workflow": {"path": ".github/workflows/build.yml"},
    "a push": {"event": "push"},
    "a manual run": {"event": "workflow_dispatch"},
    "another commit": {"head": "f6" * 20},
}


@pytest.mark.parametrize("planted", list(PLANTED_RUNS), ids=list(PLANTED_RUNS))
def test_github_never_takes_a_newer_artifact_from_an_untrusted_run(
    offline_repo: CiRepo, fake_forge: FakeForge, planted: str
) -> None:
    merged_pull(fake_forge)
    reviewed = saved_plan(offline_repo.path / "reviewed")
    evil = saved_plan(offline_repo.path / "evil")
    (evil / "plan.tfplan").write_text('{"format": "reconciler-plan", "planted": true}\n')
    github_run(fake_forge, 501)
    github_run(fake_forge, 666, **PLANTED_RUNS[planted])
    github_artifact(fake_forge, 11, 501, "2024-05-01T09:00:00Z", zip_folder(reviewed))
    github_artifact(fake_forge, 12, 666, "2024-05-01T09:59:00Z", zip_folder(evil))  # newest

    fetched = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert fetched.returncode == 0, fetched.stderr
    assert "run 501" in fetched.stdout
    got = offline_repo.path / "got" / "plan.tfplan"
    assert got.read_text() == (reviewed / "plan.tfplan").read_text()
    storage = [seen.path for seen in fake_forge.state.seen if seen.path.startswith("/storage/")]
    assert storage == ["/storage/0"]  # the planted archive was never even downloaded


@pytest.mark.parametrize("planted", [*PLANTED_RUNS, "no run named", "a run that is gone"])
def test_github_refuses_when_only_untrusted_artifacts_exist(
    offline_repo: CiRepo, fake_forge: FakeForge, planted: str
) -> None:
    merged_pull(fake_forge)
    evil = saved_plan(offline_repo.path / "evil")
    if planted in PLANTED_RUNS:
        github_run(fake_forge, 666, **PLANTED_RUNS[planted])
    run_id = None if planted == "no run named" else 666
    github_artifact(fake_forge, 12, run_id, "2024-05-01T09:59:00Z", zip_folder(evil))

    refused = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert refused.returncode == 1, refused.stdout
    assert (
        f"no artifact reconciler-plan-{HEAD} comes from this repository's own pull_request run "
        f"of {WORKFLOW} for head {HEAD[:12]}, so none can be trusted: artifact 12: "
    ) in refused.stderr
    assert refused.stderr.rstrip().endswith("Nothing was applied.")
    assert not (offline_repo.path / "got").exists()


def test_github_refuses_without_knowing_the_expected_workflow(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    merged_pull(fake_forge)
    env = github_env(fake_forge, GITHUB_SHA=MERGE, GITHUB_WORKFLOW_REF="")
    refused = offline_repo.forge("fetch-plan", "got", **env)
    assert refused.returncode == 1
    assert "cannot tell which workflow makes the plans" in refused.stderr
    # Named explicitly, it works.
    github_run(fake_forge, 501, path=".github/workflows/plans.yml")
    github_artifact(
        fake_forge,
        11,
        501,
        "2024-05-01T09:00:00Z",
        zip_folder(saved_plan(offline_repo.path / "made")),
    )
    env["RECONCILER_PLAN_WORKFLOW"] = ".github/workflows/plans.yml"
    assert offline_repo.forge("fetch-plan", "got", **env).returncode == 0


def test_gitlab_refuses_a_merge_request_from_a_fork(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    gitlab_merged(fake_forge, offline_repo, "success")
    fake_forge.state.mrs_of_commit[MERGE][0]["source_project_id"] = 77
    refused = offline_repo.forge("fetch-plan", "got", **gitlab_env(fake_forge, CI_COMMIT_SHA=MERGE))
    assert refused.returncode == 1
    assert "merge request !5 comes from project 77, not from this project (42)" in refused.stderr
    assert not (offline_repo.path / "got").exists()


def test_gitlab_takes_only_this_projects_merge_request_pipeline_for_the_head(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    plan_dir = gitlab_merged(fake_forge, offline_repo, "success")
    state = fake_forge.state
    evil = zip_folder(saved_plan(offline_repo.path / "evil"), prefix="reconciler-plan/")
    # Newer pipelines that must not count: another project's, a push pipeline, another head.
    for pid, extra in (
        (401, {"project_id": 77}),
        (402, {"source": "push"}),
        (403, {"sha": "f6" * 20}),
    ):
        pipeline = {"id": pid, "sha": HEAD, "status": "success", "project_id": 42,
                    "source": "merge_request_event", **extra}  # fmt: skip
        state.pipelines.insert(0, pipeline)
        state.jobs[pid] = [{"id": 9000 + pid, "name": "reconciler-plan", "status": "success"}]
        state.job_zips[9000 + pid] = evil
    fetched = offline_repo.forge("fetch-plan", "got", **gitlab_env(fake_forge, CI_COMMIT_SHA=MERGE))
    assert fetched.returncode == 0, fetched.stderr
    assert "pipeline 301" in fetched.stdout
    got = offline_repo.path / "got" / "plan.tfplan"
    assert got.read_bytes() == (plan_dir / "plan.tfplan").read_bytes()


def test_gitlab_refuses_when_the_reviewed_head_was_never_planned(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    """The last push's pipeline never ran (or was of another project): an older head's
    successful plan must not be applied instead."""
    gitlab_merged(fake_forge, offline_repo, "success")
    fake_forge.state.pipelines[0]["sha"] = "e5" * 20
    refused = offline_repo.forge("fetch-plan", "got", **gitlab_env(fake_forge, CI_COMMIT_SHA=MERGE))
    assert refused.returncode == 1
    assert (
        f"merge request !5 has no merge request pipeline of this project for its head {HEAD[:12]}"
    ) in refused.stderr
