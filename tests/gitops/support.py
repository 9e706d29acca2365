"""What the CI-recipe tests share: a git repository holding a config root, and the scripts
run as CI runs them (subprocesses, with the installed ``reconciler`` on PATH)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = REPO / "examples" / "ci"
RECONCILE = SCRIPTS / "reconcile.sh"
FORGE = SCRIPTS / "forge.py"
# A key CI would hold in its secrets: it must never appear in any output or file.
SECRET_KEY = "sk-test-do-not-print-7f3a9c2e41"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=ci@example.com", "-c", "user.name=ci", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@dataclass
class CiRepo:
    """A clone of what CI checks out: the config root ``cfg`` (the bundled examples)."""

    path: Path
    env: dict[str, str]  # the job's environment: PATH, server, key, settings

    @property
    def root(self) -> Path:
        return self.path / "cfg"

    @property
    def out(self) -> Path:
        return self.path / "reconciler-plan"

    def commit(self, message: str) -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")

    def run(
        self, *command: str | Path, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(c) for c in command],
            cwd=self.path,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def reconcile(self, mode: str, **env: str) -> subprocess.CompletedProcess[str]:
        """``examples/ci/reconcile.sh MODE``, exactly as the workflows run it."""
        return self.run("bash", RECONCILE, mode, env=env)

    def forge(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.run(sys.executable, FORGE, *args, env=env)


def base_env() -> dict[str, str]:
    """A CI job's environment: the installed reconciler first on PATH, nothing inherited
    that could point the scripts elsewhere (no forge or server variables)."""
    keep = {k: v for k, v in os.environ.items() if k in {"HOME", "LANG", "LC_ALL", "TMPDIR"}}
    bin_dir = str(Path(sys.executable).parent)
    return {
        **keep,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "RECONCILER_ROOT": "cfg",
        "RECONCILER_OUT": "reconciler-plan",
        "NO_COLOR": "1",
    }


def make_repo(path: Path, **env: str) -> CiRepo:
    shutil.copytree(
        REPO / "examples", path / "cfg", ignore=shutil.ignore_patterns(".reconciler", "ci")
    )
    (path / ".gitignore").write_text("reconciler-plan/\n.reconciler/\n")
    git(path, "init", "-q", "-b", "main")
    repo = CiRepo(path, {**base_env(), "MISTRAL_API_KEY": SECRET_KEY, **env})
    repo.commit("config root")
    return repo
