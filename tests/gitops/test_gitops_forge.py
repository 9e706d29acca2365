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


def github_env(forge: FakeForge, **extra: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_API_URL": forge.url,
        "GITHUB_REPOSITORY": "o/r",
        "GITHUB_TOKEN": GITHUB_TOKEN,
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


def test_github_fetches_the_plan_of_the_merged_pull_requests_head(
    offline_repo: CiRepo, fake_forge: FakeForge
) -> None:
    state = fake_forge.state
    plan_dir = saved_plan(offline_repo.path / "made")
    state.pulls_of_commit[MERGE] = [
        {"number": 6, "merged_at": None, "head": {"sha": "d4" * 20}},
        {"number": 7, "merged_at": "2024-05-01T10:00:00Z", "merge_commit_sha": MERGE,
         "head": {"sha": HEAD}},
    ]  # fmt: skip
    stale_zip = zip_folder(saved_plan(offline_repo.path / "older"))
    state.artifacts = [
        {"id": 11, "name": f"reconciler-plan-{HEAD}", "expired": False,
         "created_at": "2024-05-01T09:00:00Z", "_zip": stale_zip},
        {"id": 12, "name": f"reconciler-plan-{HEAD}", "expired": False,
         "created_at": "2024-05-01T09:30:00Z", "_zip": zip_folder(plan_dir)},
        {"id": 13, "name": f"reconciler-plan-{HEAD}", "expired": True,
         "created_at": "2024-05-01T09:45:00Z", "_zip": b"gone"},
    ]  # fmt: skip
    (offline_repo.path / "older" / "tree").write_text("old\n")
    state.artifacts[0]["_zip"] = zip_folder(offline_repo.path / "older")

    fetched = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert fetched.returncode == 0, fetched.stderr
    assert (
        fetched.stdout.strip() == f"fetched the plan of pull request #7 (head {HEAD[:12]}) into got"
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
    state.mrs_of_commit[MERGE] = [{"iid": 5, "state": "merged", "merge_commit_sha": MERGE}]
    state.pipelines = [
        {"id": 301, "sha": HEAD, "status": newest_status},
        {"id": 300, "sha": "e5" * 20, "status": "success"},
    ]
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
    assert "merge request !5 (pipeline 301)" in fetched.stdout
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
    state = fake_forge.state
    state.pulls_of_commit[MERGE] = [
        {"number": 7, "merged_at": "2024-05-01T10:00:00Z", "head": {"sha": HEAD}}
    ]
    state.artifacts = [
        {"id": 11, "name": f"reconciler-plan-{HEAD}", "expired": False,
         "created_at": "2024-05-01T09:00:00Z", "_zip": archive.read_bytes()},
    ]  # fmt: skip
    refused = offline_repo.forge("fetch-plan", "got", **github_env(fake_forge, GITHUB_SHA=MERGE))
    assert refused.returncode == 1
    assert "plan.tfplan files, not 1" in refused.stderr
