"""``outputs`` in-process (``server: local``): result and error lines merged into one stream
ordered by custom_id (numbers as numbers, then text, then lines without one), written
atomically with ``-o``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler.cli.main import cli
from reconciler.emulator import Emulator


def request(custom_id: str | None, *, bad: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {"max_tokens": 5}
    if not bad:
        body["messages"] = [{"role": "user", "content": f"question {custom_id}"}]
    line: dict[str, Any] = {"body": body}
    if custom_id is not None:
        line["custom_id"] = custom_id
    return line


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "reconciler.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "workspace": "outputs",
                "server": "local",
                "defaults": {"endpoint": "/v1/chat/completions", "model": "mistral-small-latest"},
            }
        )
    )
    (tmp_path / "jobs").mkdir()
    ids = ["10", "2", "b", "1", "a", "30", "007"]
    requests = [request(i, bad=i in ("2", "a")) for i in ids]
    (tmp_path / "jobs" / "jobs.yaml").write_text(
        yaml.safe_dump({"jobs": {"mixed": {"requests": requests}}})
    )
    return tmp_path


def run(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(root), *args], catch_exceptions=False)


def finish_jobs(root: Path) -> None:
    with Emulator(root / ".reconciler" / "emulator.sqlite3") as emulator:
        emulator.advance(3600)


def test_results_and_errors_merge_in_custom_id_order(root: Path) -> None:
    assert run(root, "apply", "--auto-approve").exit_code == 0
    finish_jobs(root)

    shown = run(root, "outputs", "mixed")

    assert shown.exit_code == 0, shown.output
    lines = [json.loads(line) for line in shown.stdout.splitlines()]
    assert [line["custom_id"] for line in lines] == ["1", "2", "007", "10", "30", "a", "b"]
    failed = [line["custom_id"] for line in lines if line["response"]["status_code"] != 200]
    assert failed == ["2", "a"]
    assert shown.stderr.startswith("mixed: 5 results, 2 errors [id=")


def test_output_file_is_written_whole_or_not_at_all(root: Path, tmp_path: Path) -> None:
    assert run(root, "apply", "--auto-approve").exit_code == 0
    target = tmp_path / "out" / "mixed.jsonl"
    target.parent.mkdir()

    early = run(root, "outputs", "mixed", "-o", str(target))
    assert early.exit_code == 1
    assert "results are available once it has finished (see `reconciler wait`)" in early.stderr
    assert list(target.parent.iterdir()) == []

    finish_jobs(root)
    done = run(root, "outputs", "mixed", "-o", str(target))
    assert done.exit_code == 0, done.output
    assert done.stdout == ""
    assert len(target.read_text().splitlines()) == 7
    assert list(target.parent.iterdir()) == [target]


def test_a_name_without_a_live_job_is_an_error(root: Path) -> None:
    result = run(root, "outputs", "mixed")
    assert result.exit_code == 1
    assert "Error: no live job named mixed in workspace outputs" in result.stderr
