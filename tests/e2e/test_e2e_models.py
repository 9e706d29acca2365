"""Model names checked against ``GET /v1/models`` (the served emulator has Mistral's public
catalogue): a typo fails plan and apply with exit 1 before anything is created, naming
``file:line:col`` and the closest real name; aliases, ``ft:`` models and agent jobs pass;
offline ``validate`` says nothing about models; a server without the endpoint gets a
warning, and the plan goes on."""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from e2e.harness import E2E, chat_requests, flat, inline_jobs

MODELS = "/v1/models"


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


def test_a_typo_fails_plan_and_apply_before_anything_is_created(e2e: E2E) -> None:
    root = e2e.root(
        "model-typo",
        inline_jobs(["good-a", "good-b"])
        | {"typo": {"model": "mistral-smal-latest", "requests": chat_requests(1)}},
    )
    e2e.admin.clear_log()

    planned = e2e.cli.run(root, "plan", "--detailed-exitcode")
    models_read = e2e.admin.count("GET", MODELS)
    applied = e2e.cli.run(root, "apply", "--auto-approve")

    host = e2e.url.removeprefix("http://")
    for result in (planned, applied):
        assert result.code == 1, str(result)
        line = re.search(r"^(\S+):(\d+):(\d+): jobs\.typo\.model: (.*)$", result.stderr, re.M)
        assert line is not None, result.stderr
        assert line.group(1).endswith("jobs/jobs.yaml")
        text = (root.path / "jobs" / "jobs.yaml").read_text().splitlines()
        row, column = int(line.group(2)), int(line.group(3))
        assert text[row - 1][column - 1 :].startswith("mistral-smal-latest")
        assert line.group(4) == (
            f"model 'mistral-smal-latest' is not served by {host}; "
            "did you mean 'mistral-small-latest'?"
        )
        assert "Error: 1 problem found" in result.stderr
        assert "Plan:" not in result.stdout
    assert models_read == 1  # once per command
    assert e2e.admin.writes() == []  # nothing created: not even the good jobs
    assert e2e.live.jobs(root.workspace) == []


def test_a_typo_in_defaults_is_reported_once_where_it_is_written(e2e: E2E) -> None:
    root = e2e.root("model-defaults", inline_jobs(["a", "b"]))
    root.defaults["model"] = "mistral-larg-latest"
    root.write()

    result = e2e.cli.run(root, "plan")

    assert result.code == 1, str(result)
    (problem,) = [line for line in result.stderr.splitlines() if ": defaults.model: " in line]
    assert problem.split(":")[0].endswith("reconciler.yaml")
    assert "did you mean 'mistral-large-latest'? (used by jobs a, b)" in problem


def test_aliases_fine_tunes_and_agents_pass_and_validate_stays_offline(e2e: E2E) -> None:
    root = e2e.root(
        "model-pass",
        {
            "alias": {"model": "mistral-small-latest", "requests": chat_requests(1)},
            "dated": {"model": "mistral-small-2603", "requests": chat_requests(1)},
            "tuned": {
                "model": "ft:mistral-small-latest:abc123:20260101",
                "requests": chat_requests(1),
            },
            "agent": {
                "model": None,
                "agent_id": "ag-0123",
                "endpoint": "/v1/conversations",
                "requests": [{"custom_id": "0", "body": {"inputs": "hello"}}],
            },
        },
    )
    del root.jobs["agent"]["model"]
    root.write()
    typo = e2e.root(
        "offline-check", {"typo": {"model": "nope-latest", "requests": chat_requests(1)}}
    )
    e2e.admin.clear_log()

    planned = e2e.cli.run(root, "plan", "--detailed-exitcode")
    validated = e2e.cli.run(typo, "validate")

    assert planned.code == 2, str(planned)
    assert "Plan: 4 to create" in planned.stdout
    assert validated.code == 0, str(validated)
    assert "nope-latest" not in validated.output and "did you mean" not in validated.output
    assert [e.path for e in e2e.admin.log()] == ["/v1/batch/jobs", MODELS]  # validate: none
    # With nothing to create, the catalogue is not even read.
    e2e.admin.clear_log()
    assert e2e.cli.run(typo, "plan", "--destroy").code == 0
    assert e2e.admin.count("GET", MODELS) == 0


class _Proxy(http.server.ThreadingHTTPServer):
    target: str


class _Forward(http.server.BaseHTTPRequestHandler):
    """Forwards everything to the emulator, except GET /v1/models: 404, like a server
    (or a gateway) that does not serve the model list."""

    server: _Proxy

    def _forward(self) -> None:
        if self.path.split("?")[0] == MODELS:
            body = b'{"detail":"Not Found"}'
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = httpx.request(
            self.command, self.server.target + self.path, headers=headers, content=data, timeout=30
        )
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in (
                "content-length",
                "transfer-encoding",
                "connection",
                "content-encoding",
            ):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_DELETE = _forward

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def no_models_server(e2e: E2E) -> Iterator[str]:
    proxy = _Proxy(("127.0.0.1", 0), _Forward)
    proxy.target = e2e.url
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{proxy.server_address[1]}"
    proxy.shutdown()
    proxy.server_close()
    thread.join(timeout=10)


def test_a_server_without_the_model_list_gets_a_warning(e2e: E2E, no_models_server: str) -> None:
    root = e2e.root("model-404", inline_jobs(["a"]))
    server = ["--server", no_models_server]

    planned = e2e.cli.run(root, *server, "plan", "--detailed-exitcode", server=False)
    applied = e2e.cli.run(root, *server, "apply", "--auto-approve", server=False)

    for result in (planned, applied):
        assert (
            f"Warning: {no_models_server.removeprefix('http://')} does not serve GET /v1/models "
            "(HTTP 404); model names were not checked."
        ) in flat(result.stderr), str(result)
    assert planned.code == 2, str(planned)
    assert applied.code == 0 and "Apply complete: 1 created" in applied.stdout
    assert e2e.live.per_name(root.workspace) == {"a": 1}
