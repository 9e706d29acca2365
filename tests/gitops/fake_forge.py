"""A fake of the few GitHub and GitLab REST endpoints ``examples/ci/forge.py`` uses.

It serves real HTTP on 127.0.0.1 (forge.py is run as a subprocess, exactly as CI runs it),
paginates like the forges do, answers artifact downloads with a redirect to "storage" and
records every request, so tests can check that a token never follows that redirect.
"""

from __future__ import annotations

import io
import json
import re
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

GITHUB_TOKEN = "ghs_fake-github-token-0123456789"
GITLAB_TOKEN = "glpat-fake-gitlab-token-0123456789"


def zip_folder(folder: Path, prefix: str = "") -> bytes:
    """A zip of the files in ``folder`` (as upload-artifact stores them: no folder prefix)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                zf.writestr(prefix + path.name, path.read_bytes())
    return buffer.getvalue()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: Any


@dataclass
class ForgeState:
    # GitHub
    comments: list[dict[str, Any]] = field(default_factory=list)  # of pull request 7
    pulls_of_commit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)  # with "_zip": bytes
    runs: dict[int, dict[str, Any]] = field(default_factory=dict)  # workflow runs by id
    # GitLab
    notes: list[dict[str, Any]] = field(default_factory=list)  # of merge request !5
    mrs_of_commit: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pipelines: list[dict[str, Any]] = field(default_factory=list)  # of merge request !5
    jobs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # pipeline -> jobs
    job_zips: dict[int, bytes] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    next_id: int = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id


class FakeForge:
    def __init__(self) -> None:
        self.state = ForgeState()
        self.lock = threading.Lock()
        handler = _handler_for(self)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _page(items: list[dict[str, Any]], query: dict[str, list[str]]) -> list[dict[str, Any]]:
    per_page = int(query.get("per_page", ["30"])[0])
    page = int(query.get("page", ["1"])[0])
    return items[(page - 1) * per_page : page * per_page]


def _handler_for(forge: FakeForge) -> type[BaseHTTPRequestHandler]:
    state = forge.state

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _send(
            self, status: int, payload: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            data = (
                payload
                if isinstance(payload, bytes)
                else b""
                if payload is None
                else json.dumps(payload).encode()
            )
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            split = urlsplit(self.path)
            path, query = split.path, parse_qs(split.query)
            with forge.lock:
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.seen.append(Seen(self.command, self.path, headers, body))
                if path.startswith("/storage/"):
                    self._send(200, state.artifacts[int(path.rsplit("/", 1)[1])]["_zip"])
                    return
                if path.startswith("/api/v4/"):
                    if self.headers.get("PRIVATE-TOKEN") != GITLAB_TOKEN:
                        self._send(401, {"message": "401 Unauthorized"})
                        return
                    self._gitlab(path[len("/api/v4") :], query, body)
                    return
                if self.headers.get("Authorization") != f"Bearer {GITHUB_TOKEN}":
                    self._send(401, {"message": "Bad credentials"})
                    return
                self._github(path, query, body)

        def _github(self, path: str, query: dict[str, list[str]], body: Any) -> None:
            if m := re.fullmatch(r"/repos/o/r/issues/7/comments", path):
                if self.command == "GET":
                    self._send(200, _page(state.comments, query))
                else:
                    made = {"id": state.new_id(), "body": body["body"], "user": {"type": "Bot"}}
                    state.comments.append(made)
                    self._send(201, made)
            elif m := re.fullmatch(r"/repos/o/r/issues/comments/(\d+)", path):
                found = next(c for c in state.comments if c["id"] == int(m.group(1)))
                found["body"] = body["body"]
                self._send(200, found)
            elif m := re.fullmatch(r"/repos/o/r/commits/(\w+)/pulls", path):
                self._send(200, state.pulls_of_commit.get(m.group(1), []))
            elif path == "/repos/o/r/actions/artifacts":
                name = query.get("name", [""])[0]
                listed = [
                    {k: v for k, v in a.items() if k != "_zip"}
                    for a in state.artifacts
                    if a["name"] == name
                ]
                self._send(200, {"total_count": len(listed), "artifacts": listed})
            elif m := re.fullmatch(r"/repos/o/r/actions/runs/(\d+)", path):
                run = state.runs.get(int(m.group(1)))
                if run is None:
                    self._send(404, {"message": "Not Found"})
                else:
                    self._send(200, run)
            elif m := re.fullmatch(r"/repos/o/r/actions/artifacts/(\d+)/zip", path):
                index = next(i for i, a in enumerate(state.artifacts) if a["id"] == int(m.group(1)))
                self._send(302, None, {"Location": f"{forge.url}/storage/{index}"})
            else:
                self._send(404, {"message": "Not Found"})

        def _gitlab(self, path: str, query: dict[str, list[str]], body: Any) -> None:
            if path == "/projects/42/merge_requests/5/notes":
                if self.command == "GET":
                    self._send(200, _page(state.notes, query))
                else:
                    made = {"id": state.new_id(), "body": body["body"], "system": False}
                    state.notes.append(made)
                    self._send(201, made)
            elif m := re.fullmatch(r"/projects/42/merge_requests/5/notes/(\d+)", path):
                found = next(n for n in state.notes if n["id"] == int(m.group(1)))
                found["body"] = body["body"]
                self._send(200, found)
            elif m := re.fullmatch(r"/projects/42/repository/commits/(\w+)/merge_requests", path):
                self._send(200, state.mrs_of_commit.get(m.group(1), []))
            elif path == "/projects/42/merge_requests/5/pipelines":
                self._send(200, state.pipelines)
            elif m := re.fullmatch(r"/projects/42/pipelines/(\d+)/jobs", path):
                self._send(200, state.jobs.get(int(m.group(1)), []))
            elif m := re.fullmatch(r"/projects/42/jobs/(\d+)/artifacts", path):
                self._send(200, state.job_zips[int(m.group(1))])
            else:
                self._send(404, {"message": "404 Not found"})

        def do_GET(self) -> None:
            self._handle()

        def do_POST(self) -> None:
            self._handle()

        def do_PATCH(self) -> None:
            self._handle()

        def do_PUT(self) -> None:
            self._handle()

    return Handler
