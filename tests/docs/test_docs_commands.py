"""The README and the walkthrough, run as a new user would: every shell block marked
``<!-- doc-test -->``, in order, in one shell, in a fresh copy of the repository (the files
a clone has), with the installed ``reconciler`` and the embedded emulator.

The README's install line is the one thing not run: it would build a virtual environment
inside the test. Its ``.venv/bin/reconciler`` is the installed one instead.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MARKER = "<!-- doc-test -->"
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # 1-based line of the opening fence
    code: str


def doc_blocks(path: Path) -> list[Block]:
    """The fenced blocks marked ``<!-- doc-test -->`` (other HTML comments may sit between)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if lines[i].strip() != MARKER:
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].strip().startswith("<!--"):
            j += 1
        opening = FENCE.match(lines[j]) if j < len(lines) else None
        assert opening and opening.group(1) == "sh", f"{path}:{i + 1}: {MARKER} needs a sh block"
        end = next(k for k in range(j + 1, len(lines)) if lines[k].startswith("```"))
        blocks.append(Block(path.name, j + 1, "\n".join(lines[j + 1 : end]) + "\n"))
        i = end + 1
    return blocks


def without_install(code: str) -> str:
    """Drop the steps that create a virtual environment and install into it."""
    kept = [
        step
        for step in code.strip().split(" && ")
        if not step.startswith("python3 -m venv") and "pip install" not in step
    ]
    return " && ".join(kept) + "\n"


def fresh_copy(dest: Path) -> Path:
    """The files a clone of the repository has (tracked, or new and not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if not source.exists() or source.is_dir():
            continue  # deleted in the work tree, or a submodule
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
    # What the README's install line leaves: .venv/bin/reconciler.
    venv_bin = dest / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "reconciler").symlink_to(Path(sys.executable).parent / "reconciler")
    return dest


def user_env(home: Path) -> dict[str, str]:
    keep = {"LANG", "LC_ALL", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    home.mkdir(parents=True, exist_ok=True)
    return {
        **env,
        "HOME": str(home),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
        "GIT_AUTHOR_NAME": "Doc Reader",
        "GIT_AUTHOR_EMAIL": "reader@example.com",
        "GIT_COMMITTER_NAME": "Doc Reader",
        "GIT_COMMITTER_EMAIL": "reader@example.com",
        "GIT_CONFIG_NOSYSTEM": "1",
    }


@dataclass
class DocRun:
    """The marked blocks of one document, running in the background in one shell."""

    process: subprocess.Popen[str] | None  # None: skipped (``skip`` says why)
    repo: Path  # the fresh copy it runs in
    skip: str = ""

    def output(self) -> str:
        """Wait for it; everything it printed, after asserting it succeeded."""
        if self.process is None:
            pytest.skip(self.skip)
        stdout, stderr = self.process.communicate(timeout=300)
        shown = stdout + stderr
        assert self.process.returncode == 0, f"exit {self.process.returncode}\n{shown[-6000:]}"
        return shown


def start_blocks(blocks: list[Block], repo: Path, home: Path) -> DocRun:
    parts = ["set -euo pipefail"]
    for block in blocks:
        parts.append(f"echo '### {block.doc}:{block.line}' >&2")
        parts.append(block.code)
        # errexit ignores a failure early in an `a && b` list; a block must not.
        parts.append("rc=$?; [ $rc = 0 ] || { echo 'block failed: exit '$rc >&2; exit $rc; }")
    process = subprocess.Popen(
        ["bash", "-c", "\n".join(parts)],
        cwd=repo,
        env=user_env(home),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return DocRun(process, repo)


@pytest.fixture(scope="module")
def doc_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, DocRun]]:
    """Both documents start at once (each in its own copy): they mostly wait on processes
    starting, so running them side by side halves the wall time."""
    runs: dict[str, DocRun] = {}
    base = tmp_path_factory.mktemp("docs")
    readme_blocks = doc_blocks(REPO / "README.md")
    first = readme_blocks[0]
    readme_blocks[0] = Block(first.doc, first.line, without_install(first.code))
    readme_repo = fresh_copy(base / "readme" / "clone")
    if port_in_use(8765):
        skip = "port 8765, which the README's emulator example binds, is in use"
        runs["readme"] = DocRun(None, readme_repo, skip)
    else:
        runs["readme"] = start_blocks(readme_blocks, readme_repo, base / "readme" / "home")
    walk_repo = fresh_copy(base / "walkthrough" / "clone")
    walk_blocks = doc_blocks(REPO / "docs" / "walkthrough.md")
    runs["walkthrough"] = start_blocks(walk_blocks, walk_repo, base / "walkthrough" / "home")
    yield runs
    for run in runs.values():
        if run.process is not None and run.process.poll() is None:
            run.process.kill()
            run.process.communicate()


def quoted(path: Path) -> list[str]:
    """Inline-code spans of the prose that claim output (`Apply complete: …` and the like)."""
    text = path.read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", prose.replace("\n", " "))
    return [
        s for s in spans if re.match(r"(Apply complete|Configuration is valid|Plan:|No changes)", s)
    ]


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_every_marked_block_is_a_shell_block() -> None:
    readme = doc_blocks(REPO / "README.md")
    assert readme[0].code.startswith("python3 -m venv .venv && .venv/bin/pip install -q . && ")
    assert len(readme) >= 5
    assert len(doc_blocks(REPO / "docs" / "walkthrough.md")) >= 5
    # The README's test command (run by .ci/run) is not run here: it runs this very test.
    assert all("pytest" not in block.code for block in readme)


def test_readme_commands_work_as_written(doc_runs: dict[str, DocRun]) -> None:
    run = doc_runs["readme"]
    out, repo = run.output(), run.repo

    assert "Plan: 10 to create, 0 to replace, 0 to cancel, 0 to delete." in out
    assert "Apply complete: 10 created, 0 replaced, 0 cancelled, 0 deleted." in out
    assert "10 jobs finished: 10 succeeded." in out
    assert (
        "Configuration is valid: 10 jobs (4 from matrices) in 6 files"
        " (workspace support-analytics)." in out
    )
    assert "plan exit code" not in out  # the quickstart says plan exits 0 after the install
    assert "Emulator listening on http://127.0.0.1:8765" in out
    assert out.count("ticket-triage           ") >= 2  # status, in-process and served
    results = (repo / "ticket-triage.jsonl").read_text().splitlines()
    assert len(results) == 12
    for kind in ("config", "jobs"):
        schema = (repo / "my-jobs" / "schemas" / f"{kind}.schema.json").read_text()
        assert schema == (REPO / "schemas" / f"{kind}.schema.json").read_text()
    assert "reconciler, version " in out
    for claim in quoted(REPO / "README.md"):
        assert claim in out, claim


def test_walkthrough_from_zero_to_applied_in_a_pull_request(doc_runs: dict[str, DocRun]) -> None:
    run = doc_runs["walkthrough"]
    out = run.output()
    doc = REPO / "docs" / "walkthrough.md"
    jobs_repo = run.repo.parent / "batch-jobs"
    assert (jobs_repo / "evals" / "reconciler.yaml").exists()
    log = subprocess.run(
        ["git", "log", "--format=%s", "main"], cwd=jobs_repo, capture_output=True, text=True,
        check=True,
    ).stdout.splitlines()  # fmt: skip
    assert log == [
        "capitals: mistral-medium-latest",
        "Add the capitals and wine evals",
        "Schemas for editors",
    ]
    assert "Apply complete: 2 created, 0 replaced, 0 cancelled, 0 deleted." in out
    assert "Apply complete: 1 created, 0 replaced, 0 cancelled, 0 deleted." in out
    assert "# capitals will get a new version: model changed" in out
    assert '~ model    = "mistral-small-latest" -> "mistral-medium-latest"' in out
    assert "2 jobs finished: 2 succeeded." in out
    assert "exit code: 4" in out
    comment = (jobs_repo / "reconciler-plan" / "comment.md").read_text()
    assert comment.startswith("<!-- reconciler-plan: research-evals -->\n")
    claims = quoted(doc)
    assert len(claims) >= 4
    for claim in claims:
        assert claim in out, claim


def test_the_readme_config_example_is_a_valid_root(tmp_path: Path) -> None:
    from reconciler.config.loader import load

    text = (REPO / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert example.startswith("# yaml-language-server: $schema=../schemas/config.schema.json\n")
    (tmp_path / "reconciler.yaml").write_text(example)
    state = load(tmp_path)
    assert [job.name for job in state.jobs] == ["wine-quick"]
