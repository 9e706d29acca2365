"""The API key through the real command line: never shown, whole or in part, whatever the
server echoes (errors, ``--debug`` log and traceback); refused before any request when it
is no valid header value; sent only to exact loopback literals from ``reconciler.yaml``."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from key_echo import KeyEcho, leaked

KEY = "sk-live-7Hq2bV9xLm4pR8sT1wZ6yN3cK5dF0gJ"


@pytest.fixture
def echo() -> Iterator[KeyEcho]:
    server = KeyEcho().start()
    yield server
    server.close()


def make_root(path: Path, server: str) -> Path:
    (path / "jobs").mkdir(parents=True)
    (path / "reconciler.yaml").write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "workspace": "secrets",
                "server": server,
                "defaults": {"endpoint": "/v1/chat/completions", "model": "mistral-small-latest"},
            }
        )
    )
    (path / "jobs" / "jobs.yaml").write_text("jobs: {}\n")
    return path


def run(
    root: Path, *args: str, key: str = KEY, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"MISTRAL_SERVER_URL", "NO_COLOR"}}
    env.update(MISTRAL_API_KEY=key, NO_COLOR="1", RECONCILER_TIMEOUT="20s")
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "-C", str(root), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize("plain", [True, False], ids=["text", "json"])
@pytest.mark.parametrize("pad", [0, 280, 290])
@pytest.mark.parametrize("debug", [False, True])
def test_no_part_of_the_key_in_any_output(
    echo: KeyEcho, tmp_path: Path, pad: int, debug: bool, plain: bool
) -> None:
    echo.pad, echo.plain = pad, plain
    root = make_root(tmp_path / "root", echo.url)
    done = run(root, *(["--debug"] if debug else []), "plan")
    assert done.returncode == 1, done.stderr
    assert echo.seen and echo.seen[0][2] == f"Bearer {KEY}"  # it had the key to leak
    assert "Error: GET /v1/batch/jobs (HTTP 403): forbidden: " in done.stderr
    if debug:
        assert "[debug] --> GET " in done.stderr and "Traceback" in done.stderr
        assert "authorization: Bearer ***" in done.stderr
    assert leaked(KEY, done.stdout, done.stderr) == []


BAD_KEYS = {
    "crlf": "sk-live-7Hq2bV9xLm4pR8sT\r\nX-Injected: yes",
    "newline at the end": KEY + "\n",
    "escape": "sk-live-7Hq2bV9x\x1b[2JLm4pR8sT1wZ6yN3cK5dF0gJ",
    "non-latin-1": "sk-live-7Hq2bV9xLm4pR8sT1wZ6yN3cK5dF0gJ\u2603",
}


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_a_key_that_is_no_header_value_is_refused_before_any_request(
    echo: KeyEcho, tmp_path: Path, key: str
) -> None:
    root = make_root(tmp_path / "root", echo.url)
    for args in (["plan"], ["--debug", "status"]):
        done = run(root, *args, key=key)
        assert done.returncode == 1, done.stderr
        assert "Error: MISTRAL_API_KEY cannot be sent as an API key: it " in done.stderr
        assert "Traceback" not in done.stderr or args[0] == "--debug"
        assert leaked(key, done.stdout, done.stderr) == []
        assert "X-Injected" not in done.stderr
    assert echo.seen == []


@pytest.mark.parametrize(
    "host",
    [
        "localhost.",  # resolves to 127.0.0.1 here, but through DNS: never trusted
        "LOCALHOST.",
        "localhost.localdomain",
        "127.0.0.1.",
        "127.1",
        "api.localhost",
    ],
)
def test_only_exact_loopback_literals_in_the_config_get_the_key(
    echo: KeyEcho, tmp_path: Path, host: str
) -> None:
    root = make_root(tmp_path / "root", f"http://{host}:{echo.port}")
    done = run(root, "plan")
    assert done.returncode == 1, done.stderr
    assert "is not api.mistral.ai or loopback" in done.stderr
    assert echo.seen == []  # not even a request without the key


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_exact_loopback_literals_do_get_the_key(echo: KeyEcho, tmp_path: Path, host: str) -> None:
    root = make_root(tmp_path / "root", f"http://{host}:{echo.port}")
    done = run(root, "plan")
    assert done.returncode == 1  # the echo server refuses everything
    assert [auth for _, _, auth in echo.seen][:1] == [f"Bearer {KEY}"]
    assert leaked(KEY, done.stdout, done.stderr) == []
