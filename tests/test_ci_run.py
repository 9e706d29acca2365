"""``.ci/run`` refuses a README test command that cannot fail (without running the suite).

The class, not one spelling: anything but simple commands joined by ``&&`` and ending in
pytest could hide pytest's status (``|| true``, ``; exit 0``, ``| tee``, ``set +e``, a
trap, a subshell, ``--collect-only``, ...). Checked with ``.ci/check_test_command.py``
directly, and once through ``.ci/run`` in a copy of the repository whose README says
``|| true``: it exits 1 before it removes or runs anything.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / ".ci" / "check_test_command.py"
README_COMMAND = (
    "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && "
    ".venv/bin/python -m pytest -q"
)

ACCEPTED = [
    README_COMMAND,
    "pytest",
    "pytest -q -n 2 tests",
    "python -m pytest -q",
    "python3.12 -m pytest -x",
    ".venv/bin/python -m pytest -q -k 'not slow'",
    "PYTHONHASHSEED=0 pytest -q",
    "pip install -e '.[test]' && \\\n  pytest -q",
]
REFUSED = {
    "or true": ".venv/bin/python -m pytest -q || true",
    "or colon": "pytest || :",
    "or exit 0": "pytest || exit 0",
    "or echo": "pytest -q || echo 'tests failed'",
    "semicolon true": "pytest; true",
    "trailing exit 0": "pytest && exit 0",
    "exit 0 on its own line": "pytest -q\nexit 0",
    "set +e": "set +e && pytest",
    "set +e on a line": "set +e\npytest",
    "pipe without pipefail": "pytest -q | tee test.log",
    "pipe into cat": "pytest 2>&1 | cat",
    "pipe stderr": "pytest |& tee log",
    "negation": "! pytest",
    "background": "pytest &",
    "subshell": "(pytest) || true",
    "group": "{ pytest; } || true",
    "trap": "trap 'exit 0' EXIT && pytest",
    "eval": "eval 'pytest || true'",
    "if": "if pytest; then echo ok; fi",
    "command substitution": "echo $(pytest) && pytest --version",
    "backticks": "x=`pytest || true` && pytest",
    "not pytest last": "pytest && echo done",
    "nested shell": "bash -c 'pytest || true'",
    "collect only": "pytest --collect-only",
    "co": "python -m pytest --co -q",
    "version": "pytest --version",
    "addopts": "PYTEST_ADDOPTS=--co pytest",
    "addopts quoted": "PYTEST_ADDOPTS='-q --setup-plan' pytest",
    "bash env": "BASH_ENV=./hide.sh pytest",
    "redirect": "pytest > /dev/null",
    "comment": "pytest # || true",
    "empty": "   ",
}


def check(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECK), command], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("command", ACCEPTED)
def test_commands_whose_status_is_pytests_are_accepted(command: str) -> None:
    done = check(command)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("command", list(REFUSED.values()), ids=list(REFUSED))
def test_commands_that_could_pass_with_failing_tests_are_refused(command: str) -> None:
    done = check(command)
    assert done.returncode == 1, command
    assert done.stderr.startswith(
        "CI: refusing the README's test command: it could pass with failing tests.\n  - "
    )


def test_the_readme_command_is_the_accepted_one() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- test-command -->", 1)[1].split("```sh\n", 1)[1].split("```")[0]
    assert block.strip() == README_COMMAND
    assert check(block.strip()).returncode == 0


def test_ci_run_refuses_before_it_removes_or_runs_anything(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    for name in ("run", "check_test_command.py"):
        shutil.copy2(ROOT / ".ci" / name, repo / ".ci" / name)
    (repo / "README.md").write_text(
        "Run the tests:\n\n<!-- test-command -->\n```sh\n"
        ".venv/bin/python -m pytest -q || true\n```\n"
    )
    (repo / ".venv").mkdir()
    (repo / ".venv" / "keep").write_text("a developer's environment\n")
    done = subprocess.run(
        ["bash", str(repo / ".ci" / "run")], cwd=repo, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CI: refusing the README's test command" in done.stderr
    assert "it uses '||'" in done.stderr
    assert "CI: running" not in done.stdout
    assert (repo / ".venv" / "keep").exists()  # nothing was removed, nothing ran
