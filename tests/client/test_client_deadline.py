"""The command's time limit (``MistralClient.set_deadline``): no wait of the retry loop may
end past it, whatever the server asks, and reaching it says what the API kept answering."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scripted_transport import BASE, Scripted, reply

from reconciler import durations
from reconciler.cli import timeouts
from reconciler.client import MistralClient
from reconciler.errors import ApiError


class Clock:
    """A fake clock that sleeping advances: what the client waits is what time passes."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def make(transport: Scripted, clock: Clock) -> MistralClient:
    return MistralClient(
        BASE, "sk-test-deadline", transport=transport, sleep=clock.sleep, now=clock.now,
        rand=lambda: 1.0,
    )  # fmt: skip


def test_a_429_forever_with_a_huge_retry_after_gives_up_at_the_deadline() -> None:
    clock = Clock()
    transport = Scripted(then=reply(429, {"message": "slow down"}, headers={"Retry-After": "3600"}))
    client = make(transport, clock)
    client.set_deadline(150, label="--timeout 2m30s")
    with pytest.raises(ApiError) as info:
        client.list_jobs()
    # Two waits of 60 s (Retry-After is capped at 60 s a wait) fit; a third would not.
    assert clock.sleeps == [60.0, 60.0]
    assert info.value.format() == (
        "GET /v1/batch/jobs (HTTP 429): gave up after 2m: the API kept answering 429 (rate "
        "limited) and asked to wait 1h more; the command's time limit is --timeout 2m30s "
        "(set --timeout or RECONCILER_TIMEOUT to change it)"
    )


def test_without_a_deadline_the_same_server_is_waited_out_as_before() -> None:
    clock = Clock()
    transport = Scripted(
        *[reply(429, {}, headers={"Retry-After": "3600"})] * 3, reply(200, {"data": []})
    )
    client = make(transport, clock)
    assert client.list_jobs() == {"data": []}
    assert clock.sleeps == [60.0, 60.0, 60.0]


def test_5xx_and_unreachable_servers_give_up_at_the_deadline_too() -> None:
    clock = Clock()
    client = make(Scripted(then=reply(503, {"message": "down"})), clock)
    client.set_deadline(1.0)
    with pytest.raises(ApiError, match=r"gave up after .*: the API kept answering 503"):
        client.get_job("job-1")
    assert sum(clock.sleeps) <= 1.0

    clock = Clock()
    client = make(Scripted(then=httpx.ConnectError("refused")), clock)
    client.set_deadline(1.0)
    with pytest.raises(ApiError, match=r"no answer from 127\.0\.0\.1:9 \(ConnectError: refused\)"):
        client.get_job("job-1")
    assert sum(clock.sleeps) <= 1.0


def test_no_request_starts_after_the_deadline() -> None:
    clock = Clock()
    transport = Scripted(then=reply(200))
    client = make(transport, clock)
    client.set_deadline(10)
    client.get_job("job-1")
    clock.t += 11
    with pytest.raises(ApiError, match="the time limit has passed"):
        client.get_job("job-1")
    assert len(transport.requests) == 1
    client.set_deadline(None)  # lifted (following jobs is bounded by wait --timeout)
    client.get_job("job-1")
    assert len(transport.requests) == 2


def test_reads_never_wait_for_an_answer_past_the_deadline() -> None:
    clock = Clock()
    seen: list[object] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"]["read"])
        return reply(200)(request)

    client = make(Scripted(then=answer), clock)
    client.get_job("job-1")
    client.set_deadline(5)
    client.get_job("job-1")
    assert seen == [30.0, 5.0]


def test_defaults_per_kind_of_command() -> None:
    assert timeouts.for_command("plan", None) == (600.0, "10m, the default for plan")
    assert timeouts.for_command("status", None)[0] == timeouts.READ_DEFAULT
    assert timeouts.for_command("apply", None) == (3600.0, "1h, the default for apply")
    assert timeouts.for_command("destroy", None)[0] == timeouts.WRITE_DEFAULT
    assert timeouts.READ_DEFAULT < timeouts.WRITE_DEFAULT
    assert timeouts.for_command("plan", 3.0) == (3.0, "--timeout 3s")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("10m", 600), ("1h30m", 5400), ("2d", 172800), ("0.5", 0.5),
     ("1.5m", 90), (" 5M ", 300)],
)  # fmt: skip
def test_durations(text: str, seconds: float) -> None:
    assert durations.parse(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-5", "5x", "m", "30m1h", "1h1h", "nan", "1e9"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(durations.DurationError):
        durations.parse(text)


@given(st.integers(1, 300 * 86400))
def test_show_reads_back(seconds: int) -> None:
    assert durations.parse(durations.show(seconds)) == seconds
