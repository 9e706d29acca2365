"""The CLI as documentation: an example in every --help, --version, shell completion,
NO_COLOR and --no-color honoured wherever colour is used."""

from __future__ import annotations

import os
import pty
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from reconciler import __version__
from reconciler.cli import cli
from reconciler.emulator import Emulator

REPO = Path(__file__).resolve().parents[2]
# SGR sequences set colours; cursor movement (progress bars on a terminal) is not colour.
COLOUR = re.compile(r"\x1b\[[0-9;]*m")


def all_commands() -> Iterator[tuple[str, click.Command]]:
    def walk(command: click.Command, path: str) -> Iterator[tuple[str, click.Command]]:
        yield path, command
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, f"{path} {name}")

    yield from walk(cli, "reconciler")


COMMANDS = dict(all_commands())


def test_the_commands_are_the_documented_ones() -> None:
    assert set(COMMANDS) == {
        "reconciler",
        "reconciler validate",
        "reconciler schema",
        "reconciler plan",
        "reconciler apply",
        "reconciler destroy",
        "reconciler status",
        "reconciler wait",
        "reconciler outputs",
        "reconciler show",
        "reconciler completion",
        "reconciler emulator",
        "reconciler emulator serve",
    }


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_every_help_has_an_example(path: str) -> None:
    args = path.split()[1:]
    result = CliRunner().invoke(cli, [*args, "--help"], prog_name="reconciler")
    assert result.exit_code == 0, result.output
    text = result.output
    assert f"Usage: {path} " in text
    _, sep, examples = text.partition("Example")
    assert sep, f"{path} --help has no example"
    example_lines = [line.strip() for line in examples.split("\n\n")[0].splitlines()[1:]]
    assert example_lines, text
    for line in example_lines:
        assert "reconciler" in line, line  # a command line, not prose
    if path != "reconciler" and not isinstance(COMMANDS[path], click.Group):
        # The examples show this very command.
        sub = path.rsplit(maxsplit=1)[-1]
        assert any(f" {sub}" in line for line in example_lines), (path, example_lines)


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"], prog_name="reconciler")
    assert result.exit_code == 0
    assert result.output == f"reconciler, version {__version__}\n"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = CliRunner().invoke(cli, ["completion", shell], prog_name="reconciler")
    assert result.exit_code == 0, result.output
    assert "_RECONCILER_COMPLETE" in result.output
    assert f"{shell}_complete" in result.output


def test_completion_completes_commands_options_and_choices() -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_RECONCILER_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        }
        result = CliRunner().invoke(cli, [], prog_name="reconciler", env=env)
        return [line.split(",", 1)[1] for line in result.output.splitlines()]

    assert complete("reconciler pl") == ["plan"]
    assert complete("reconciler plan --for") == ["--format"]
    assert complete("reconciler plan --format ") == ["text", "json", "markdown"]
    assert complete("reconciler emulator s") == ["serve"]
    assert "--marker" in complete("reconciler show x --")


def test_completion_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    assert 'eval "$(reconciler completion bash)"' in readme
    assert "_RECONCILER_COMPLETE=bash_source reconciler" in readme


def run_on_a_terminal(args: list[str], cwd: Path, **env: str) -> str:
    """Run the installed reconciler with stdout on a pseudo-terminal; return what it wrote."""
    main, child = pty.openpty()
    full_env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "TERM"}}
    full_env.update(env, TERM="xterm", COLUMNS="120")
    command = [str(Path(sys.executable).parent / "reconciler"), *args]
    with subprocess.Popen(
        command, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, stdout=child, stderr=child
    ) as process:
        os.close(child)
        chunks = []
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        process.wait(timeout=60)
    os.close(main)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture(scope="module")
def applied_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The examples applied, every job finished: finished jobs are what status and wait
    colour. The emulator's clock decides when, not the machine's speed: jobs are created
    slow (they would never end during the test by themselves), then the clock is moved a
    day ahead, and `wait` confirms that all of them ended before any run starts."""
    root = tmp_path_factory.mktemp("colour") / "examples"
    shutil.copytree(REPO / "examples", root, ignore=shutil.ignore_patterns(".reconciler", "ci"))
    db = root / ".reconciler" / "emulator.sqlite3"
    db.parent.mkdir()
    with Emulator(db, speed=0.001):
        pass
    result = CliRunner().invoke(cli, ["-C", str(root), "apply", "--auto-approve"])
    assert result.exit_code == 0, result.output
    with Emulator(db) as emulator:
        emulator.advance(86400)
    finished = CliRunner().invoke(cli, ["-C", str(root), "wait", "--timeout", "30"])
    assert finished.exit_code == 0, finished.output
    assert "10 jobs finished: 10 succeeded." in finished.output
    # One job changes spec: the plan then has a diff to colour.
    jobs = root / "jobs" / "support.yaml"
    jobs.write_text(jobs.read_text().replace("timeout_hours: 12", "timeout_hours: 13"))
    return root


def test_colour_only_on_a_terminal_and_never_with_no_color(applied_examples: Path) -> None:
    root = ["-C", str(applied_examples)]
    commands = [["plan"], ["status"], ["wait", "greeting-smoke-test"]]
    runs: list[tuple[list[str], dict[str, str]]] = []
    for command in commands:
        runs += [([*root, *command], {}), ([*root, *command], {"NO_COLOR": "1"})]
    runs.append((["--no-color", *root, "plan"], {}))
    # Each run mostly waits for its process to start: run them side by side.
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        outputs = list(pool.map(lambda run: run_on_a_terminal(run[0], REPO, **run[1]), runs))
    for (args, env), output in zip(runs, outputs, strict=True):
        coloured = not env and "--no-color" not in args
        assert bool(COLOUR.search(output)) == coloured, (args, env, output)
    # Not a terminal: no colour either.
    piped = CliRunner().invoke(cli, [*root, "plan"])
    assert piped.exit_code == 0 and not COLOUR.search(piped.output)
