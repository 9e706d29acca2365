"""The PR comment of a huge change, end to end through the CLI: `plan --format markdown
--marker` for 2,000 changed jobs (against `server: local`) fits GitHub's 65,536-character
limit, keeps its marker, and says how many jobs it left out and where the rest is."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from reconciler.cli import cli
from reconciler.render.markdown import MAX_CHARS

JOBS = 2_000


def big_root(root: Path) -> Path:
    (root / "jobs").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        "version: 1\nworkspace: big-evals\nserver: local\n"
        "defaults: {endpoint: /v1/chat/completions, model: mistral-small-latest}\n"
    )
    lines = ["jobs:"]
    for i in range(JOBS):
        lines.append(
            f"  eval-{i:04d}:\n    metadata: {{shard: '{i}'}}\n    requests:\n"
            f"      - {{custom_id: '0', body: {{messages: [{{role: user, content: 'q{i}'}}]}}}}"
        )
    (root / "jobs" / "all.yaml").write_text("\n".join(lines) + "\n")
    return root


def test_two_thousand_changed_jobs_fit_one_comment(tmp_path: Path) -> None:
    root = big_root(tmp_path / "root")
    result = CliRunner().invoke(
        cli, ["-C", str(root), "plan", "--format", "markdown", "--marker", "--detailed-exitcode"]
    )
    assert result.exit_code == 2, result.stderr
    comment = result.stdout
    assert len(comment) <= MAX_CHARS
    assert len(comment) > MAX_CHARS - 2_000  # it uses the room it has
    assert comment.splitlines()[0] == "<!-- reconciler-plan: big-evals -->"
    assert f"**Plan: {JOBS} to create, 0 to replace, 0 to cancel, 0 to delete.**" in comment
    shown = comment.count("<details>")
    left_out = re.search(
        r"\*\*(\d+) jobs not shown\*\*: this comment is limited to 65,536", comment
    )
    assert left_out is not None, comment[-500:]
    assert shown > 0 and shown + int(left_out.group(1)) == JOBS
    assert "See the CI log, or run `reconciler plan --format text`, for the full plan." in comment
    # Whole sections only: every <details> that was opened is closed.
    assert comment.count("</details>") == shown
