"""The CI recipes and the pre-commit hook, read as data: they run the tested script, keep
the key in secrets, and wire the steps the way docs/ci.md says."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from gitops.support import FORGE, RECONCILE, REPO, base_env

GITHUB = REPO / "examples" / "ci" / "github" / "reconciler.yml"
GITLAB = REPO / "examples" / "ci" / "gitlab" / ".gitlab-ci.yml"
HOOKS = REPO / ".pre-commit-hooks.yaml"


def load(path: Path) -> dict[Any, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def runs(steps: list[dict[str, Any]]) -> list[str]:
    return [step["run"] for step in steps if "run" in step]


def test_the_scripts_are_executable() -> None:
    for script in (RECONCILE, FORGE):
        assert os.access(script, os.X_OK), script
    files = subprocess.run(
        ["git", "ls-files", "-s", "examples/ci"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for line in files.splitlines():
        if line.endswith(("reconcile.sh", "forge.py")):
            assert line.startswith("100755 "), line


def test_github_workflow_runs_the_tested_script() -> None:
    flow = load(GITHUB)
    on = flow[True]  # YAML 1.1 reads the key `on` as true
    assert set(on) == {"pull_request", "push", "workflow_dispatch"}
    assert on["push"] == {"branches": ["main"]}
    assert flow["permissions"] == {"contents": "read"}
    jobs = flow["jobs"]

    plan = jobs["plan"]
    assert plan["permissions"]["pull-requests"] == "write"
    plan_runs = runs(plan["steps"])
    assert any('"$RECONCILER_SCRIPTS/reconcile.sh" plan' in r for r in plan_runs)
    assert any(
        '"$RECONCILER_SCRIPTS/forge.py" comment "$RECONCILER_OUT/comment.md"' in r
        for r in plan_runs
    )
    upload = next(
        s for s in plan["steps"] if s.get("uses", "").startswith("actions/upload-artifact")
    )
    assert upload["with"]["name"] == "reconciler-plan-${{ github.event.pull_request.head.sha }}"
    assert upload["if"] == "steps.plan.outputs.exitcode == '0'"

    apply = jobs["apply"]
    assert apply["concurrency"]["cancel-in-progress"] is False
    assert apply["permissions"] == {
        "contents": "read",
        "actions": "read",
        "pull-requests": "read",
    }
    apply_runs = runs(apply["steps"])
    fetch = next(i for i, r in enumerate(apply_runs) if 'forge.py" fetch-plan' in r)
    applied = next(i for i, r in enumerate(apply_runs) if 'reconcile.sh" apply' in r)
    assert fetch < applied
    assert flow["env"]["RECONCILER_SCRIPTS"] == "examples/ci"
    assert (REPO / flow["env"]["RECONCILER_ROOT"] / "reconciler.yaml").exists()


def test_gitlab_pipeline_runs_the_tested_script() -> None:
    pipeline = load(GITLAB)
    plan, apply = pipeline["reconciler-plan"], pipeline["reconciler-apply"]
    assert plan["rules"] == [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}]
    script = "\n".join(plan["script"])
    assert '"$RECONCILER_SCRIPTS/reconcile.sh" plan' in script
    assert '"$RECONCILER_SCRIPTS/forge.py" comment "$RECONCILER_OUT/comment.md"' in script
    assert plan["artifacts"]["paths"] == [pipeline["variables"]["RECONCILER_OUT"] + "/"]
    assert apply["script"] == [
        'python "$RECONCILER_SCRIPTS/forge.py" fetch-plan "$RECONCILER_OUT"',
        '"$RECONCILER_SCRIPTS/reconcile.sh" apply',
    ]
    assert apply["resource_group"] == "reconciler-apply"
    assert pipeline["variables"]["RECONCILER_PLAN_JOB"] == "reconciler-plan"


def test_the_key_comes_from_secrets_and_is_never_in_a_command() -> None:
    github = GITHUB.read_text()
    mentions = re.findall(r"^\s*MISTRAL_API_KEY: (.*)$", github, re.MULTILINE)
    assert mentions and set(mentions) == {"${{ secrets.MISTRAL_API_KEY }}"}
    for path in (GITHUB, GITLAB, RECONCILE):
        text = path.read_text()
        for line in text.splitlines():
            code = line.split("#", 1)[0]
            assert "$MISTRAL_API_KEY" not in code and "${MISTRAL_API_KEY" not in code, line
            assert "set -x" not in code, line


def test_the_settings_the_recipes_set_are_the_ones_the_scripts_read() -> None:
    scripts = RECONCILE.read_text() + FORGE.read_text()
    names = set(load(GITHUB)["env"]) | set(load(GITLAB)["variables"])
    names -= {"PYTHONUNBUFFERED", "RECONCILER_SCRIPTS", "RECONCILER_PACKAGE"}  # the recipes'
    for name in names:
        assert name in scripts, name


def test_pre_commit_hook_validates_the_root() -> None:
    hooks = yaml.safe_load(HOOKS.read_text())
    (hook,) = hooks
    assert hook["id"] == "reconciler-validate"
    assert hook["language"] == "python" and hook["pass_filenames"] is False
    files = re.compile(hook["files"])
    for name in ("reconciler.yaml", "jobs/evals.yml", "data/cheese.jsonl"):
        assert files.search(name), name
    for name in ("README.md", "reconciler.py", "data.json"):
        assert not files.search(name), name
    # pre-commit runs the entry in the repository's top folder, without file names.
    command = shlex.split(hook["entry"])
    assert command[0] == "reconciler"
    env = base_env()
    ok = subprocess.run(
        command, cwd=REPO / "examples", env=env, capture_output=True, text=True, check=False
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("Configuration is valid: 10 jobs")
    broken = subprocess.run(
        [*command[:1], "-C", "tests", *command[1:]],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert broken.returncode == 1, broken.stdout
