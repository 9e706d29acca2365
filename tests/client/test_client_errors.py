"""Error mapping to ApiError, the debug log, and the API key never leaking anywhere."""

from __future__ import annotations

import json
import socket
import traceback
from pathlib import Path

import httpx
import pytest
from scripted_transport import BASE, Scripted, reply

from reconciler.client import MistralClient, RetryPolicy
from reconciler.errors import ApiError, UnknownOutcome

KEY = "sk-SECRET123"
FAST = RetryPolicy(max_attempts=2)


def make(transport: httpx.BaseTransport, log: list[str] | None = None) -> MistralClient:
    return MistralClient(
        BASE,
        KEY,
        transport=transport,
        sleep=lambda _: None,
        retry=FAST,
        debug_log=None if log is None else log.append,
    )


def error_of(transport: httpx.BaseTransport, call: str = "get") -> ApiError:
    client = make(transport)
    with pytest.raises(ApiError) as info:
        if call == "get":
            client.get_job("job-42")
        elif call == "file":
            client.get_file("file-7")
        else:
            client.create_job({"endpoint": "/v1/chat/completions", "model": "m"})
    return info.value


def test_401_says_to_check_the_key() -> None:
    err = error_of(Scripted(reply(401, {"message": "Unauthorized", "request_id": "r"})))
    assert err.status == 401
    assert err.request == "GET /v1/batch/jobs/job-42"
    assert err.format() == (
        "GET /v1/batch/jobs/job-42 (HTTP 401): the API rejected the key: check MISTRAL_API_KEY"
    )


def test_404_names_the_missing_job_or_file() -> None:
    err = error_of(Scripted(reply(404, {"object": "error", "message": "No job"})))
    assert err.message == "job job-42 not found"
    err = error_of(Scripted(reply(404, {"detail": "Not Found"})), "file")
    assert err.message == "file file-7 not found"
    assert err.request == "GET /v1/files/file-7"


def test_422_lists_each_field_error() -> None:
    detail = {
        "detail": [
            {
                "type": "string_too_long",
                "loc": ["body", "metadata", "reconciler.job"],
                "msg": "String should have at most 512 characters",
                "input": "x" * 600,
            },
            {"type": "missing", "loc": ["body", "endpoint"], "msg": "Field required"},
        ]
    }
    err = error_of(Scripted(reply(422, detail)), "create")
    assert err.status == 422
    assert err.details == (
        "metadata.reconciler.job: String should have at most 512 characters",
        "endpoint: Field required",
    )
    assert err.format() == (
        "POST /v1/batch/jobs (HTTP 422): the API rejected the request as invalid\n"
        "  metadata.reconciler.job: String should have at most 512 characters\n"
        "  endpoint: Field required"
    )


def test_400_shows_the_server_message() -> None:
    body = {"object": "error", "message": "job is not running", "type": "invalid_request_error"}
    err = error_of(Scripted(reply(400, body)))
    assert err.message == "job is not running"


def test_429_after_retries_says_rate_limited() -> None:
    err = error_of(Scripted(then=reply(429, {"type": "rate_limit_error", "message": "slow"})))
    assert err.status == 429
    # 50 429s waited out (RetryPolicy.rate_limited_retries), then max_attempts=2 counted ones.
    assert err.message == "rate limited by the API (gave up after 52 attempts): slow"


def test_5xx_after_retries_says_server_error() -> None:
    err = error_of(Scripted(then=reply(502, content=b"<html>Bad Gateway</html>")))
    assert err.status == 502
    assert err.message == "server error (gave up after 2 attempts): <html>Bad Gateway</html>"


def test_connection_error_says_which_host() -> None:
    err = error_of(Scripted(then=httpx.ConnectError("[Errno 111] Connection refused")))
    assert err.status is None
    assert err.message == (
        "cannot reach 127.0.0.1:9: ConnectError: [Errno 111] Connection refused (after 2 attempts)"
    )


def test_a_closed_port_for_real() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = MistralClient(
        f"http://127.0.0.1:{port}", KEY, sleep=lambda _: None, retry=FAST, timeout=5
    )
    with pytest.raises(ApiError, match=rf"cannot reach 127\.0\.0\.1:{port}: ConnectError"):
        client.list_jobs()
    with pytest.raises(ApiError) as info:  # never connected: not an unknown outcome
        client.create_job({"endpoint": "/v1/ocr", "model": "m"})
    assert not isinstance(info.value, UnknownOutcome)
    client.close()


def test_success_that_is_not_json_is_an_error() -> None:
    err = error_of(Scripted(reply(200, content=b"<html>login</html>")))
    assert err.status == 200
    assert "not JSON" in err.message


def test_debug_log_shows_method_url_status_elapsed_and_redacted_headers() -> None:
    log: list[str] = []
    transport = Scripted(reply(503, {}, headers={"Retry-After": "0"}), reply())
    client = make(transport, log)
    client.get_job("job-1", inline=True)
    text = "\n".join(log)
    assert "--> GET http://127.0.0.1:9/v1/batch/jobs/job-1?inline=true" in text
    assert "authorization: Bearer ***" in text
    assert "<-- 503 GET http://127.0.0.1:9/v1/batch/jobs/job-1?inline=true (" in text
    assert "<-- 200 GET" in text
    assert " ms)" in text
    assert "retry GET /v1/batch/jobs/job-1 in 0.00s after HTTP 503" in text
    assert "SECRET" not in text


# -- the key never leaks -------------------------------------------------------------------


def _echo_key(status: int, *, detail: bool = False) -> Scripted:
    """A hostile or buggy server that repeats the Authorization header in its errors."""

    def answer(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        if detail:
            body: object = {"detail": [{"loc": ["body", auth], "msg": f"bad {auth}"}]}
        else:
            body = {"message": f"you sent {auth}"}
        return httpx.Response(status, content=json.dumps(body).encode(), headers={"X-Echo": auth})

    return Scripted(then=answer)


def _all_text(err: BaseException) -> str:
    parts = [str(err), repr(err), "".join(traceback.format_exception(err))]
    if isinstance(err, ApiError):
        parts += [err.format(), err.message, err.request, *err.details]
    return "\n".join(parts)


@pytest.mark.parametrize(
    ("transport", "call"),
    [
        (_echo_key(401), "get"),
        (_echo_key(403), "get"),
        (_echo_key(404), "get"),
        (_echo_key(400), "get"),
        (_echo_key(422, detail=True), "create"),
        (_echo_key(429), "get"),
        (_echo_key(500), "get"),
        (_echo_key(503), "create"),
        (Scripted(then=httpx.ConnectError(f"refused {KEY}")), "get"),
        (Scripted(then=httpx.ReadTimeout(f"timed out {KEY}")), "create"),
        (Scripted(then=httpx.RemoteProtocolError(f"dropped {KEY}")), "get"),
        (Scripted(then=reply(200, content=KEY.encode())), "get"),
    ],
)
def test_the_key_appears_in_no_error_and_no_log(transport: Scripted, call: str) -> None:
    log: list[str] = []
    client = make(transport, log)
    with pytest.raises(ApiError) as info:
        if call == "get":
            client.get_job("job-1")
        else:
            client.create_job({"endpoint": "/v1/chat/completions", "model": "m"})
    # The key was sent (so there was something to leak) ...
    assert transport.requests[0].headers["authorization"] == f"Bearer {KEY}"
    # ... yet appears nowhere the user could see it.
    text = _all_text(info.value) + "\n".join(log) + repr(client) + str(client)
    assert "SECRET123" not in text
    assert log, "the debug log was written"


def test_download_errors_and_logs_do_not_leak_the_key(tmp_path: Path) -> None:
    log: list[str] = []
    client = make(_echo_key(404), log)
    with (tmp_path / "out").open("wb") as fh, pytest.raises(ApiError) as info:
        client.download_file("file-1", fh)
    assert info.value.message == "file file-1 not found"
    assert "SECRET123" not in _all_text(info.value) + "\n".join(log)
    assert any("Bearer ***" in line for line in log)


def test_authorization_header_is_redacted_whatever_the_key() -> None:
    # Short keys are below the text safety net's threshold: the header itself is masked.
    log: list[str] = []
    client = MistralClient(BASE, "k3y!", transport=Scripted(reply()), debug_log=log.append)
    client.get_job("job-1")
    text = "\n".join(log)
    assert "authorization: Bearer ***" in text
    assert "k3y!" not in text


def test_redirects_are_not_followed() -> None:
    transport = Scripted(reply(307, {}, headers={"Location": "https://elsewhere.example/v1"}))
    err = error_of(transport)
    assert err.status == 307
    assert err.message == (
        "the API answered with a redirect to https://elsewhere.example/v1; not following it"
    )
    assert len(transport.requests) == 1


LONG_KEY = "sk-live-7Hq2bV9xLm4pR8sT1wZ6yN3cK5dF0gJ"


@pytest.mark.parametrize("pad", [280, 290, 295, 299])
def test_a_server_message_is_redacted_before_it_is_cut(pad: int) -> None:
    """The server repeats the key after a long message: cutting it at 300 characters first
    would leave a prefix of the key that no whole-key search finds."""

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers["authorization"].removeprefix("Bearer ")
        return httpx.Response(403, content=("." * pad + token).encode())

    log: list[str] = []
    client = MistralClient(BASE, LONG_KEY, transport=Scripted(then=answer), debug_log=log.append)
    with pytest.raises(ApiError) as info:
        client.get_job("job-1")
    text = _all_text(info.value) + "\n".join(log)
    for i in range(len(LONG_KEY) - 7):
        assert LONG_KEY[i : i + 8] not in text, LONG_KEY[i : i + 8]
    assert info.value.message.startswith("forbidden: ...")


def test_server_words_stay_on_one_line_and_escaped() -> None:
    body = {"message": "no\n\nError: something else\x1b[2J\x9b31m"}
    err = error_of(Scripted(reply(400, body)))
    assert err.message == "no\\n\\nError: something else\\x1b[2J\\x9b31m"
