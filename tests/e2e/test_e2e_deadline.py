"""An API that answers 429 with a huge ``Retry-After``, forever: every command gives up
within its time limit (``--timeout`` / ``RECONCILER_TIMEOUT``) with a clear message, exit
1, instead of waiting for as long as the server asks (~50 minutes before the limit existed).

Bounded: a few seconds of limit per command, against the served emulator's 429 fault.
"""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner

from e2e.harness import API_KEY, E2E, flat, inline_jobs
from reconciler.cli import cli, timeouts

RUN_TIMEOUT = 40.0  # the harness's own bound, far above the limits under test


@pytest.fixture
def e2e(shared_e2e: E2E) -> E2E:
    return shared_e2e


def rate_limited_forever(e2e: E2E) -> None:
    e2e.admin.faults(rate_429=1.0, retry_after=3600)


@pytest.mark.parametrize(
    ("args", "env", "limit"),
    [
        (["--timeout", "3s", "plan"], {}, "--timeout 3s"),
        (["status"], {"RECONCILER_TIMEOUT": "2"}, "--timeout 2s"),
        (["--timeout", "2s", "apply", "--auto-approve"], {}, "--timeout 2s"),
        (["--timeout", "2s", "outputs", "a"], {}, "--timeout 2s"),
    ],
)
def test_a_429_forever_stops_at_the_commands_limit(
    e2e: E2E, args: list[str], env: dict[str, str], limit: str
) -> None:
    root = e2e.root(f"deadline-{args[-1].strip('-')}", inline_jobs(["a"]))
    rate_limited_forever(e2e)
    started = time.monotonic()
    result = e2e.cli.run(root, *args, env=env, timeout=RUN_TIMEOUT)
    took = time.monotonic() - started
    assert result.code == 1, str(result)
    shown = flat(result.stderr)
    assert "Error: GET /v1/batch/jobs (HTTP 429): gave up after " in shown, str(result)
    assert "the API kept answering 429 (rate limited) and asked to wait 1h more" in shown
    assert f"the command's time limit is {limit} (set --timeout or RECONCILER_TIMEOUT" in shown
    assert "Traceback" not in result.output
    assert took < 20, f"took {took:.1f}s"
    assert e2e.admin.writes() == []


def test_short_retry_afters_are_waited_out_until_the_limit(e2e: E2E) -> None:
    root = e2e.root("deadline-short", inline_jobs(["a"]))
    e2e.admin.faults(rate_429=1.0, retry_after=1)
    started = time.monotonic()
    result = e2e.cli.run(root, "--timeout", "3s", "plan", timeout=RUN_TIMEOUT)
    took = time.monotonic() - started
    assert result.code == 1, str(result)
    assert "the API kept answering 429 (rate limited) and asked to wait 1s more" in flat(
        result.stderr
    )
    assert 2.0 <= took < 20, f"took {took:.1f}s"
    assert e2e.admin.count("GET", "/v1/batch/jobs") >= 3  # it did wait and try again


def test_without_timeout_each_command_gets_its_default(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The defaults (10m reading, 1h writing) are too long for a test: shrunk here, in
    process, to see that each command applies its own and names it."""
    root = e2e.root("deadline-default", inline_jobs(["a"]))
    rate_limited_forever(e2e)
    monkeypatch.setattr(timeouts, "READ_DEFAULT", 1.0)
    monkeypatch.setattr(timeouts, "WRITE_DEFAULT", 2.0)
    monkeypatch.delenv("RECONCILER_TIMEOUT", raising=False)
    monkeypatch.setenv("MISTRAL_API_KEY", API_KEY)
    for args, label in (
        (["plan"], "1s, the default for plan"),
        (["apply", "--auto-approve"], "2s, the default for apply"),
    ):
        result = CliRunner().invoke(cli, ["-C", str(root.path), "--server", e2e.url, *args])
        assert result.exit_code == 1, result.output
        assert f"the command's time limit is {label}" in flat(result.stderr)


def test_a_bad_duration_is_a_usage_error(e2e: E2E) -> None:
    root = e2e.root("deadline-bad", inline_jobs(["a"]))
    result = e2e.cli.run(root, "--timeout", "soon", "plan", timeout=RUN_TIMEOUT)
    assert result.code != 0
    assert "'soon' is not a duration: write it as 90s, 10m, 1h30m" in result.stderr
    assert e2e.admin.log() == []
