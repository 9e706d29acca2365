"""Files the user names are written whole or not at all, never through a planted link, and
a plain OS error (a missing folder, a full disk) is one ``Error: …`` line with exit 1.

Run through the real command line (``python -m reconciler``) where a traceback would show,
and in-process where a full disk is simulated. The full disk is a private copy of
``/dev/full`` made with mknod in the test's folder, so that nothing shared is touched.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from click.testing import CliRunner, Result

from reconciler import outputs
from reconciler.cli import status as status_cli
from reconciler.cli.main import cli
from reconciler.emulator import Emulator


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A config root (``server: local``) whose one job has finished."""
    root = tmp_path / "root"
    (root / "jobs").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "workspace": "files",
                "server": "local",
                "defaults": {"endpoint": "/v1/chat/completions", "model": "mistral-small-latest"},
            }
        )
    )
    requests = [
        {"custom_id": str(i), "body": {"messages": [{"role": "user", "content": f"q{i}"}]}}
        for i in range(20)
    ]
    (root / "jobs" / "jobs.yaml").write_text(
        yaml.safe_dump({"jobs": {"j": {"requests": requests}}})
    )
    assert invoke(root, "apply", "--auto-approve").exit_code == 0
    with Emulator(root / ".reconciler" / "emulator.sqlite3") as emulator:
        emulator.advance(3600)
    return root


def invoke(root: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-C", str(root), *args])


def run(root: Path, *args: str, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MISTRAL_SERVER_URL"}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def assert_one_error_line(stderr: str, *expected: str) -> None:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, stderr
    for part in expected:
        assert part in errors[0], stderr


def private_dev_full(folder: Path) -> Path:
    """A full disk of the test's own: never the machine's /dev/full (an implementation that
    renames over its destination would replace the shared device)."""
    path = folder / "full"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except (PermissionError, AttributeError) as err:
        pytest.skip(f"cannot make a device node here: {err}")
    return path


def test_plan_out_into_a_missing_folder_is_one_error_line(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "folder" / "p.tfplan"
    done = run(root, "plan", "--out", str(target))
    assert done.returncode == 1, done.stderr
    assert_one_error_line(
        done.stderr, f"cannot write plan file {target}", f"no such folder {target.parent}"
    )
    assert not target.parent.exists()


def test_outputs_onto_a_full_disk_is_one_error_line(root: Path, tmp_path: Path) -> None:
    full = private_dev_full(tmp_path)
    done = run(root, "outputs", "j", "-o", str(full))
    assert done.returncode == 1, done.stderr
    assert_one_error_line(done.stderr, f"cannot write results file {full}", "no space left")
    assert stat.S_ISCHR(full.stat().st_mode)  # written to, never replaced by a file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "root"]


def test_outputs_to_a_full_standard_output_is_one_error_line(root: Path, tmp_path: Path) -> None:
    full = private_dev_full(tmp_path)
    with full.open("w") as sink:
        done = run(root, "outputs", "j", stdout=sink)
    assert done.returncode == 1, done.stderr
    assert_one_error_line(done.stderr, "No space left on device")


def test_a_device_is_written_to_never_replaced(root: Path, tmp_path: Path) -> None:
    """``-o /dev/stdout`` or ``-o /dev/null`` write to the device (a private null device
    here: a rename over the real one would break the machine for everyone)."""
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError) as err:
        pytest.skip(f"cannot make a device node here: {err}")
    done = run(root, "outputs", "j", "-o", str(null))
    assert done.returncode == 0, done.stderr
    assert stat.S_ISCHR(null.stat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null", "root"]


def test_a_full_disk_midway_leaves_no_partial_file(
    root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills after some lines: the old file stays, no temporary file is left."""
    target = tmp_path / "out" / "j.jsonl"
    target.parent.mkdir()
    target.write_text("the previous results\n")
    real: Callable[..., tuple[int, int]] = outputs.merged_results

    class Filling:
        def __init__(self, out: IO[bytes]) -> None:
            self.out, self.left = out, 200

        def write(self, data: bytes) -> int:
            if len(data) > self.left:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            self.left -= len(data)
            return self.out.write(data)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.out, name)

    def filling(client: Any, job: Any, out: IO[bytes], **kwargs: Any) -> tuple[int, int]:
        return real(client, job, Filling(out), **kwargs)

    monkeypatch.setattr(status_cli, "merged_results", filling)
    result = invoke(root, "outputs", "j", "-o", str(target))
    assert result.exit_code == 1, result.output
    assert_one_error_line(result.stderr, f"cannot write results file {target}", "no space left")
    assert target.read_text() == "the previous results\n"
    assert list(target.parent.iterdir()) == [target]


def test_a_planted_part_link_is_never_written_through(root: Path, tmp_path: Path) -> None:
    """Someone who can write the output folder plants ``results.jsonl.part`` (the old
    temporary name) as a link to a file of yours: it is neither followed nor removed."""
    out = tmp_path / "shared"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = out / "results.jsonl"
    for planted in (out / "results.jsonl.part", out / ".results.jsonl.part"):
        planted.symlink_to(victim)

    done = run(root, "outputs", "j", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious\n"
    assert len(target.read_text().splitlines()) == 20
    assert not target.is_symlink()
    links = sorted(p.name for p in out.iterdir() if p.is_symlink())
    assert links == [".results.jsonl.part", "results.jsonl.part"]
    assert {p.name for p in out.iterdir()} == {*links, "results.jsonl"}


def test_a_link_at_the_destination_is_replaced_not_followed(root: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = tmp_path / "results.jsonl"
    target.symlink_to(victim)
    done = run(root, "outputs", "j", "-o", str(target))
    assert done.returncode == 0, done.stderr
    assert victim.read_text() == "precious\n"
    assert not target.is_symlink() and len(target.read_text().splitlines()) == 20


def test_a_plan_file_keeps_its_owner_only_mode(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "p.tfplan"
    assert invoke(root, "plan", "--out", str(target)).exit_code == 0
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []
