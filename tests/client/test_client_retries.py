"""Retries: idempotent requests are retried with backoff; writes never blindly."""

from __future__ import annotations

import email.utils
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scripted_transport import BASE, FILE, Scripted, reply

from reconciler.client import MistralClient, RetryPolicy, parse_retry_after
from reconciler.errors import ApiError, UnknownOutcome

NOW = 1_700_000_000.0


def make(
    transport: Scripted,
    *,
    rand: Callable[[], float] = lambda: 1.0,
    retry: RetryPolicy | None = None,
) -> tuple[MistralClient, list[float]]:
    sleeps: list[float] = []
    client = MistralClient(
        BASE,
        "sk-test",
        transport=transport,
        sleep=sleeps.append,
        rand=rand,
        now=lambda: NOW,
        retry=retry or RetryPolicy(),
    )
    return client, sleeps


# -- idempotent requests ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_get_is_retried_on_each_retryable_status(status: int) -> None:
    transport = Scripted(reply(status, {"message": "busy"}), reply(200))
    client, sleeps = make(transport)
    assert client.get_job("job-1")["id"] == "job-1"
    assert transport.calls == ["GET /v1/batch/jobs/job-1"] * 2
    assert sleeps == [0.5]


def test_backoff_doubles_up_to_the_cap_with_the_largest_jitter() -> None:
    transport = Scripted(*[reply(503, {"message": "busy"})] * 6, reply(200))
    policy = RetryPolicy(max_attempts=7, base_delay=0.5, max_delay=4.0)
    client, sleeps = make(transport, retry=policy)
    client.get_job("job-1")
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert client.attempts["get_job"] == 7
    assert client.stats["get_job"] == 1


def test_full_jitter_scales_each_wait() -> None:
    transport = Scripted(*[reply(500, {})] * 3, reply(200))
    client, sleeps = make(transport, rand=lambda: 0.25)
    client.get_job("job-1")
    assert sleeps == [0.125, 0.25, 0.5]


@given(
    retry=st.integers(min_value=1, max_value=40),
    draw=st.floats(min_value=0.0, max_value=1.0),
    base=st.floats(min_value=0.01, max_value=5.0),
    cap=st.floats(min_value=0.01, max_value=60.0),
)
def test_jitter_is_bounded(retry: int, draw: float, base: float, cap: float) -> None:
    policy = RetryPolicy(base_delay=base, max_delay=cap)
    delay = policy.backoff(retry, lambda: draw)
    assert 0.0 <= delay <= min(cap, base * 2 ** (retry - 1)) + 1e-9


def test_real_random_jitter_stays_within_the_ceiling() -> None:
    transport = Scripted(*[reply(502, {})] * 4, reply(200))
    client, sleeps = make(transport, rand=__import__("random").Random(7).random)
    client.get_job("job-1")
    ceilings = [0.5, 1.0, 2.0, 4.0]
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert len(set(sleeps)) == 4  # jittered, not a fixed schedule


def test_gives_up_after_max_attempts() -> None:
    transport = Scripted(then=reply(503, {"message": "overloaded"}))
    client, sleeps = make(transport, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(ApiError) as info:
        client.get_job("job-1")
    assert info.value.status == 503
    assert len(transport.requests) == 3
    assert len(sleeps) == 2
    assert "gave up after 3 attempts" in info.value.message


def test_retry_after_seconds_is_honoured() -> None:
    transport = Scripted(
        reply(429, {"message": "slow down"}, headers={"Retry-After": "7"}), reply()
    )
    client, sleeps = make(transport)
    client.get_job("job-1")
    assert sleeps == [7.0]


def test_retry_after_http_date_is_honoured() -> None:
    when = email.utils.formatdate(NOW + 30, usegmt=True)
    transport = Scripted(reply(503, {}, headers={"Retry-After": when}), reply())
    client, sleeps = make(transport)
    client.get_job("job-1")
    assert sleeps == [30.0]


def test_retry_after_is_capped() -> None:
    transport = Scripted(reply(429, {}, headers={"Retry-After": "86400"}), reply())
    client, sleeps = make(transport, retry=RetryPolicy(max_retry_after=60.0))
    client.get_job("job-1")
    assert sleeps == [60.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("12", 12.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        (email.utils.formatdate(NOW + 90, usegmt=True), 90.0),
        (email.utils.formatdate(NOW - 90, usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_garbage_retry_after_falls_back_to_backoff() -> None:
    transport = Scripted(reply(429, {}, headers={"Retry-After": "whenever"}), reply())
    client, sleeps = make(transport)
    client.get_job("job-1")
    assert sleeps == [0.5]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.ReadError("reset by peer"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=type,
)
def test_get_is_retried_on_transport_errors(failure: Exception) -> None:
    transport = Scripted(failure, reply())
    client, sleeps = make(transport)
    assert client.get_job("job-1")["id"] == "job-1"
    assert len(transport.requests) == 2
    assert sleeps == [0.5]


def test_list_is_retried() -> None:
    transport = Scripted(
        httpx.ReadTimeout("t"), reply(502, {}), reply(200, {"object": "list", "data": []})
    )
    client, _sleeps = make(transport)
    assert client.list_jobs()["data"] == []
    assert len(transport.requests) == 3
    assert client.stats["list_jobs"] == 1
    assert client.attempts["list_jobs"] == 3


def test_cancel_is_retried_on_5xx_and_dropped_connections() -> None:
    transport = Scripted(reply(500, {}), httpx.RemoteProtocolError("dropped"), reply())
    client, sleeps = make(transport)
    assert client.cancel_job("job-1")["id"] == "job-1"
    assert transport.calls == ["POST /v1/batch/jobs/job-1/cancel"] * 3
    assert sleeps == [0.5, 1.0]


def test_delete_is_retried() -> None:
    gone = {"id": "job-1", "object": "batch", "deleted": True}
    transport = Scripted(reply(429, {}, headers={"Retry-After": "2"}), reply(200, gone))
    client, sleeps = make(transport)
    assert client.delete_job("job-1") == gone
    assert sleeps == [2.0]


def test_a_retried_delete_that_finds_nothing_was_done_by_the_lost_attempt() -> None:
    transport = Scripted(httpx.RemoteProtocolError("dropped"), reply(404, {"message": "nope"}))
    client, _ = make(transport)
    assert client.delete_job("job-1") == {"id": "job-1", "object": "batch", "deleted": True}
    transport = Scripted(reply(503, {}), reply(404, {"message": "nope"}))
    client, _ = make(transport)
    assert client.delete_file("file-1")["deleted"] is True


def test_a_first_delete_404_is_an_error() -> None:
    transport = Scripted(reply(404, {"message": "nope"}))
    client, _ = make(transport)
    with pytest.raises(ApiError) as info:
        client.delete_job("job-1")
    assert info.value.status == 404
    # A 429 says the server did nothing: a 404 after it is a real "not found".
    transport = Scripted(reply(429, {}), reply(404, {"message": "nope"}))
    client, _ = make(transport)
    with pytest.raises(ApiError):
        client.delete_job("job-1")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_not_retried(status: int) -> None:
    transport = Scripted(reply(status, {"message": "no"}), then=reply())
    client, sleeps = make(transport)
    with pytest.raises(ApiError) as info:
        client.get_job("job-1")
    assert info.value.status == status
    assert len(transport.requests) == 1
    assert sleeps == []


def test_a_non_transient_transport_error_is_not_retried() -> None:
    transport = Scripted(httpx.UnsupportedProtocol("no such scheme"), then=reply())
    client, _sleeps = make(transport)
    with pytest.raises(ApiError, match=r"cannot reach 127\.0\.0\.1:9"):
        client.get_job("job-1")
    assert len(transport.requests) == 1


# -- writes ----------------------------------------------------------------------------------

BODY = {"endpoint": "/v1/chat/completions", "model": "m", "input_files": ["f"]}


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.ReadError("connection reset"),
        httpx.WriteError("broken pipe"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
    ids=type,
)
def test_create_with_lost_answer_is_unknown_never_resent(failure: Exception) -> None:
    transport = Scripted(failure, then=reply())
    client, sleeps = make(transport)
    with pytest.raises(UnknownOutcome) as info:
        client.create_job(BODY)
    assert len(transport.requests) == 1
    assert sleeps == []
    assert info.value.request == "POST /v1/batch/jobs"
    assert info.value.status is None
    assert "may or may not have taken effect" in info.value.message


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_with_5xx_is_unknown_never_resent(status: int) -> None:
    transport = Scripted(reply(status, {"message": "oops"}), then=reply())
    client, sleeps = make(transport)
    with pytest.raises(UnknownOutcome) as info:
        client.create_job(BODY)
    assert info.value.status == status
    assert len(transport.requests) == 1
    assert sleeps == []


def test_create_is_retried_after_429_honouring_retry_after() -> None:
    transport = Scripted(
        reply(429, {"type": "rate_limit_error"}, headers={"Retry-After": "3"}),
        reply(429, {"type": "rate_limit_error"}),
        reply(),
    )
    client, sleeps = make(transport)
    assert client.create_job(BODY)["id"] == "job-1"
    assert sleeps == [3.0, 1.0]
    assert [r.content for r in transport.requests] == [transport.requests[0].content] * 3


def test_a_rate_limit_paces_a_call_instead_of_failing_it() -> None:
    # Twenty 429s in a row are a server pacing its clients, not a failure: a bulk apply
    # must not lose the creates that happened to lose the race for the next token.
    limited = reply(429, {"type": "rate_limit_error"}, headers={"Retry-After": "1"})
    transport = Scripted(*[limited] * 20, reply())
    client, sleeps = make(transport, retry=RetryPolicy(max_attempts=2))
    assert client.create_job(BODY)["id"] == "job-1"
    assert sleeps == [1.0] * 20
    assert client.attempts["create_job"] == 21


def test_429s_beyond_the_paced_ones_count_as_attempts() -> None:
    transport = Scripted(then=reply(429, {"message": "quota"}, headers={"Retry-After": "1"}))
    client, sleeps = make(transport, retry=RetryPolicy(max_attempts=2, rate_limited_retries=3))
    with pytest.raises(ApiError) as info:
        client.create_job(BODY)
    assert info.value.status == 429
    assert len(transport.requests) == 5  # 3 paced + 2 counted
    assert sleeps == [1.0] * 4


def test_other_threads_hold_their_requests_while_one_waits_out_a_429() -> None:
    transport = Scripted(reply(429, {}, headers={"Retry-After": "2"}), reply(), reply(), reply())
    client, sleeps = make(transport)
    client.get_job("job-1")  # refused once: this thread waits 2 s, then retries
    assert sleeps == [2.0]
    other = threading.Thread(target=client.get_job, args=("job-2",))
    other.start()
    other.join()
    # The clock is frozen, so the pause is still on: the other thread held its request.
    assert sleeps == [2.0, 2.0]
    client.get_job("job-3")  # the thread that waited the pause out does not wait twice
    assert sleeps == [2.0, 2.0]
    assert len(transport.requests) == 4


def test_create_is_retried_when_the_connection_was_never_made() -> None:
    transport = Scripted(httpx.ConnectError("refused"), httpx.PoolTimeout("pool"), reply())
    client, _sleeps = make(transport)
    assert client.create_job(BODY)["id"] == "job-1"
    assert len(transport.requests) == 3


def test_create_4xx_fails_at_once() -> None:
    transport = Scripted(reply(400, {"message": "bad endpoint"}), then=reply())
    client, _sleeps = make(transport)
    with pytest.raises(ApiError) as info:
        client.create_job(BODY)
    assert not isinstance(info.value, UnknownOutcome)
    assert len(transport.requests) == 1


def test_create_rate_limited_for_good() -> None:
    transport = Scripted(then=reply(429, {"message": "quota"}))
    client, _ = make(transport, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(ApiError) as info:
        client.create_job(BODY)
    assert not isinstance(info.value, UnknownOutcome)
    assert info.value.status == 429


def test_upload_is_unknown_on_timeout_and_retried_on_429(tmp_path: Path) -> None:
    data = tmp_path / "in.jsonl"
    data.write_bytes(b'{"custom_id": "0", "body": {}}\n' * 1000)
    transport = Scripted(httpx.ReadTimeout("t"), then=reply(200, FILE))
    client, _ = make(transport)
    with pytest.raises(UnknownOutcome):
        client.upload_file(data, filename="in.jsonl")
    assert len(transport.requests) == 1

    transport = Scripted(reply(429, {}, headers={"Retry-After": "1"}), reply(200, FILE))
    client, sleeps = make(transport)
    assert client.upload_file(data, filename="in.jsonl")["id"] == "file-1"
    assert sleeps == [1.0]
    first, second = transport.requests
    # The retry re-sent the whole file, not what was left of the stream.
    assert data.read_bytes() in second.content
    assert len(first.content) == len(second.content)
