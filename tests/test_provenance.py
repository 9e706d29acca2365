"""``reconciler.commit``: the config root's git commit, ``-dirty`` exactly when the files
the configuration reads differ from it; nothing outside a work tree or without git."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.provenance import git_commit

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
    }
    return subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo" / "evals"
    (root / "jobs").mkdir(parents=True)
    (root / "reconciler.yaml").write_text("version: 1\n")
    (root / "jobs" / "a.yaml").write_text("jobs: {}\n")
    (tmp_path / "repo" / "elsewhere.txt").write_text("x\n")
    git(tmp_path / "repo", "init", "-q", ".")
    git(tmp_path / "repo", "add", "-A")
    git(tmp_path / "repo", "commit", "-q", "-m", "init")
    return root


def read(root: Path) -> list[Path]:
    return [root / "reconciler.yaml", root / "jobs" / "a.yaml"]


def test_a_clean_tree_gives_the_commit(repo: Path) -> None:
    head = git(repo, "rev-parse", "HEAD")
    assert git_commit(repo, read(repo)) == head
    # Outside the config root, and untracked files it does not read, do not count; nor
    # does the local emulator's state.
    (repo.parent / "elsewhere.txt").write_text("changed\n")
    (repo / "plan.tfplan").write_text("{}")
    (repo / ".reconciler").mkdir()
    (repo / ".reconciler" / "emulator.sqlite3").write_text("db")
    assert git_commit(repo, read(repo)) == head


@pytest.mark.parametrize("how", ["modified", "staged", "deleted", "untracked-read"])
def test_a_difference_in_what_the_config_reads_is_dirty(repo: Path, how: str) -> None:
    head = git(repo, "rev-parse", "HEAD")
    files = read(repo)
    match how:
        case "modified":
            (repo / "jobs" / "a.yaml").write_text("jobs: {x: {}}\n")
        case "staged":
            (repo / "jobs" / "a.yaml").write_text("jobs: {x: {}}\n")
            git(repo, "add", "jobs/a.yaml")
        case "deleted":
            (repo / "jobs" / "a.yaml").unlink()
            files = files[:1]
        case "untracked-read":
            (repo / "jobs" / "b.yaml").write_text("jobs: {}\n")
            files.append(repo / "jobs" / "b.yaml")
    assert git_commit(repo, files) == f"{head}-dirty"


def test_no_commit_outside_a_work_tree_or_without_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert git_commit(plain) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q", ".")
    assert git_commit(empty) is None  # no commit yet
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert git_commit(plain) is None
