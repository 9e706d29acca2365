"""End-to-end harness: real ``reconciler`` processes against ``reconciler emulator serve``.

- :class:`Root` writes a config root (``reconciler.yaml`` + one job file) the way a user
  would, with ``server: local`` in the file so that a test that forgot ``--server`` talks to
  an empty in-process emulator and fails loudly instead of hitting anything real.
- :class:`Cli` runs the command line as a subprocess (``python -m reconciler``), always with
  ``--server URL`` of the served emulator, and checks that the API key never shows.
- :class:`Live` reads live state independently of the code under test, through the official
  ``mistralai`` SDK, and counts jobs per name.
- :class:`Admin` steers the served emulator: faults, the request log, speed, the clock.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from mistralai.client import Mistral

# Loopback servers get the key (DESIGN.md section 5); it must never appear in any output.
API_KEY = "e2e-secret-key-0123456789abcdef"
WORKSPACE_TAG = "reconciler.workspace"
NAME_TAG = "reconciler.job"
ACTIVE = frozenset({"QUEUED", "RUNNING", "CANCELLATION_REQUESTED"})
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_TIMEOUT = 90.0
SERVER_START_TIMEOUT = 20.0


def chat_requests(n: int, *, bad: Iterable[int] = (), text: str = "hello") -> list[dict[str, Any]]:
    """``n`` inline chat requests; indices in ``bad`` lack ``messages`` (they land in the
    job's error file)."""
    bad_set = set(bad)
    return [
        {"custom_id": str(i), "body": {"max_tokens": 10}}
        if i in bad_set
        else {
            "custom_id": str(i),
            "body": {"max_tokens": 10, "messages": [{"role": "user", "content": f"{text} {i}"}]},
        }
        for i in range(n)
    ]


def jsonl(lines: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(dict(line)) + "\n" for line in lines)


@dataclass
class Root:
    """A config root on disk. ``jobs`` maps names to job specs as written in YAML."""

    path: Path
    workspace: str
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_destroy: int = 10
    # More of reconciler.yaml: "safety" entries beside max_destroy, or top-level keys
    # such as "prices".
    config: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(
        default_factory=lambda: {
            "endpoint": "/v1/chat/completions",
            "model": "mistral-small-latest",
        }
    )

    def write(self) -> Root:
        (self.path / "jobs").mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "version": 1,
            "workspace": self.workspace,
            "server": "local",
            "defaults": self.defaults,
            "safety": {"max_destroy": self.max_destroy},
        }
        for key, value in self.config.items():
            if key == "safety":
                config["safety"].update(value)
            else:
                config[key] = value
        (self.path / "reconciler.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (self.path / "jobs" / "jobs.yaml").write_text(
            yaml.safe_dump({"jobs": self.jobs}, sort_keys=False)
        )
        return self

    def input_file(self, name: str, lines: Iterable[Mapping[str, Any]]) -> str:
        """Write ``data/<name>`` and return its path as a job file names it."""
        data = self.path / "data"
        data.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(jsonl(lines))
        return f"../data/{name}"


def inline_jobs(names: Iterable[str], *, requests: int = 2, **extra: Any) -> dict[str, Any]:
    return {name: {"requests": chat_requests(requests, text=name), **extra} for name in names}


@dataclass
class Result:
    args: list[str]
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"$ reconciler {' '.join(self.args)}\nexit {self.code}\n"
            f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"
        )


class Cli:
    """Runs ``python -m reconciler -C ROOT --server URL ...`` as a user would."""

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.env = {
            **os.environ,
            "MISTRAL_API_KEY": API_KEY,
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
        }
        self.env.pop("MISTRAL_SERVER_URL", None)
        self.processes: list[subprocess.Popen[str]] = []

    def command(self, root: Root | Path, *args: str, server: bool = True) -> list[str]:
        path = root.path if isinstance(root, Root) else root
        head = [sys.executable, "-m", "reconciler", "-C", str(path)]
        if server:
            head += ["--server", self.url]
        return [*head, *args]

    def run(
        self,
        root: Root | Path,
        *args: str,
        timeout: float = DEFAULT_TIMEOUT,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        server: bool = True,
    ) -> Result:
        command = self.command(root, *args, server=server)
        done = subprocess.run(
            command,
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
            cwd=self.workdir,
            check=False,
        )
        result = Result(list(args), done.returncode, done.stdout, done.stderr)
        assert API_KEY not in result.output, f"the API key leaked:\n{result}"
        return result

    def run_argv(
        self, argv: list[str], *, timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] = {}
    ) -> Result:
        """``reconciler ARGV...`` exactly as given: no ``-C``/``--server`` put in front."""
        done = subprocess.run(
            [sys.executable, "-m", "reconciler", *argv],
            input="",
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **env},
            cwd=self.workdir,
            check=False,
        )
        result = Result(list(argv), done.returncode, done.stdout, done.stderr)
        assert API_KEY not in result.output, f"the API key leaked:\n{result}"
        return result

    def ok(self, root: Root | Path, *args: str, **kwargs: Any) -> Result:
        result = self.run(root, *args, **kwargs)
        assert result.code == 0, str(result)
        return result

    def start(self, root: Root | Path, *args: str, **popen: Any) -> subprocess.Popen[str]:
        """A background process; killed at teardown if still running."""
        process = subprocess.Popen(
            self.command(root, *args),
            stdin=popen.pop("stdin", subprocess.DEVNULL),
            stdout=popen.pop("stdout", subprocess.DEVNULL),
            stderr=popen.pop("stderr", subprocess.DEVNULL),
            text=True,
            env=self.env,
            cwd=self.workdir,
            **popen,
        )
        self.processes.append(process)
        return process

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


@dataclass(frozen=True)
class Job:
    id: str
    name: str
    status: str
    model: str | None
    created_at: int
    metadata: dict[str, str]
    output_file: str | None
    error_file: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE


class Live:
    """Live state as the official SDK sees it, re-filtered by the workspace tag here."""

    def __init__(self, url: str) -> None:
        self._stack = contextlib.ExitStack()
        self.sdk = self._stack.enter_context(Mistral(api_key="e2e-observer", server_url=url))

    def jobs(self, workspace: str) -> list[Job]:
        out: dict[str, Job] = {}
        page = 0
        while True:
            listed = self.sdk.batch.jobs.list(
                metadata={WORKSPACE_TAG: workspace},
                page=page,
                page_size=100,
                order_by="created",
            )
            data = listed.data or []
            for raw in data:
                metadata = {str(k): str(v) for k, v in (raw.metadata or {}).items()}
                if metadata.get(WORKSPACE_TAG) != workspace:
                    continue
                out[raw.id] = Job(
                    id=raw.id,
                    name=metadata.get(NAME_TAG, ""),
                    status=str(raw.status),
                    model=raw.model if isinstance(raw.model, str) else None,
                    created_at=int(raw.created_at),
                    metadata=metadata,
                    output_file=raw.output_file if isinstance(raw.output_file, str) else None,
                    error_file=raw.error_file if isinstance(raw.error_file, str) else None,
                )
            if len(data) < 100:
                break
            page += 1
        return list(out.values())

    def per_name(self, workspace: str) -> Counter[str]:
        """How many live jobs each name has (history and duplicates included)."""
        return Counter(job.name for job in self.jobs(workspace))

    def active_per_name(self, workspace: str) -> Counter[str]:
        return Counter(job.name for job in self.jobs(workspace) if job.active)

    def by_name(self, workspace: str) -> dict[str, list[Job]]:
        out: dict[str, list[Job]] = {}
        for job in sorted(self.jobs(workspace), key=lambda j: j.created_at):
            out.setdefault(job.name, []).append(job)
        return out

    def close(self) -> None:
        self._stack.close()


@dataclass(frozen=True)
class Logged:
    method: str
    path: str
    status: int
    dropped: bool


class Admin:
    """The served emulator's admin API (not authenticated, faulted or logged)."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=f"{url}/_emulator", timeout=30)

    def faults(self, **faults: float | int | None) -> None:
        """Replace the whole fault set (unnamed faults go back to their defaults)."""
        self.http.put("/faults", json=faults).raise_for_status()

    def speed(self, speed: float) -> None:
        self.http.put("/settings", json={"speed": speed}).raise_for_status()

    def advance(self, seconds: float) -> None:
        self.http.post("/clock", json={"advance": seconds}).raise_for_status()

    def clear_log(self) -> None:
        self.http.delete("/requests").raise_for_status()

    def log(self) -> list[Logged]:
        data = self.http.get("/requests").json()["data"]
        return [Logged(e["method"], e["path"], e["status"], e["dropped"]) for e in data]

    def writes(self) -> list[Logged]:
        return [e for e in self.log() if e.method in WRITES]

    def count(self, method: str, path: str) -> int:
        return sum(1 for e in self.log() if e.method == method and e.path == path)

    def close(self) -> None:
        self.http.close()


class Served:
    """``reconciler emulator serve --port 0`` in a subprocess, stopped with SIGTERM."""

    def __init__(self, db_path: Path, *flags: str) -> None:
        self.db_path = db_path
        self.stderr_path = db_path.with_suffix(".stderr")
        command = [sys.executable, "-m", "reconciler", "emulator", "serve", "--port", "0"]
        with self.stderr_path.open("w") as stderr:
            self.process = subprocess.Popen(
                [*command, "--db", str(db_path), *flags],
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], SERVER_START_TIMEOUT)
        line = self.process.stdout.readline() if ready else ""  # printed once it listens
        prefix = "Emulator listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}\n{self.stderr_path.read_text()}")
        self.url = line[len(prefix) :].strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@dataclass
class E2E:
    """A served emulator, the command line pointed at it, and independent observers."""

    server: Served
    cli: Cli
    live: Live
    admin: Admin
    tmp: Path

    @classmethod
    def start(cls, tmp: Path, *flags: str) -> E2E:
        server = Served(tmp / f"served-{time.monotonic_ns()}.sqlite3", *flags)
        return cls(server, Cli(server.url, tmp), Live(server.url), Admin(server.url), tmp)

    @property
    def url(self) -> str:
        return self.server.url

    def root(self, name: str, jobs: dict[str, dict[str, Any]], **settings: Any) -> Root:
        return Root(self.tmp / name, workspace=f"ws-{name}", jobs=jobs, **settings).write()

    def close(self) -> None:
        """Kill every CLI process still running, close the observers, stop the server."""
        self.cli.close()
        self.live.close()
        self.admin.close()
        self.server.stop()


def flat(text: str) -> str:
    """Whitespace collapsed: messages are wrapped to the terminal width."""
    return " ".join(text.split())


def plan_json(result: Result) -> dict[str, Any]:
    assert result.code in (0, 2), str(result)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def planned(document: Mapping[str, Any], action: str) -> list[str]:
    """Names of the changes of one action in a JSON plan."""
    return sorted(c["name"] for c in document["changes"] if c["action"] == action)
