"""Served over HTTP, the emulator keeps connections alive like the real API — and closes
them whenever the next request could not be found safely."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from emulator_support import JOBS

from reconciler.emulator import Emulator, ServedEmulator

AUTH = {"Authorization": "Bearer keep-alive-token"}


@pytest.fixture
def connection(emulator: Emulator) -> Iterator[http.client.HTTPConnection]:
    with ServedEmulator(emulator) as served:
        url = urlsplit(served.url)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        yield conn
        conn.close()


def _exchange(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    chunked: bool = False,
) -> http.client.HTTPResponse:
    conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
    response = conn.getresponse()
    response.read()
    return response


def test_one_connection_serves_request_after_request(
    connection: http.client.HTTPConnection,
) -> None:
    first = _exchange(connection, "GET", JOBS, headers=AUTH)
    sock = connection.sock
    answers = [first] + [_exchange(connection, "GET", JOBS, headers=AUTH) for _ in range(3)]
    assert [a.status for a in answers] == [200] * 4
    assert all(a.getheader("Connection") is None for a in answers)
    assert connection.sock is sock  # never reconnected


def test_a_body_the_emulator_did_not_read_does_not_leak_into_the_next_request(
    connection: http.client.HTTPConnection,
) -> None:
    body = json.dumps(
        {"endpoint": "/v1/chat/completions", "model": "mistral-small-latest"}
    ).encode()
    refused = _exchange(connection, "POST", JOBS, body, {"Content-Type": "application/json"})
    assert refused.status == 401  # refused before the body was read
    assert refused.getheader("Connection") is None
    listed = _exchange(connection, "GET", JOBS, headers=AUTH)
    assert listed.status == 200


def test_a_large_unread_body_closes_the_connection(
    connection: http.client.HTTPConnection,
) -> None:
    refused = _exchange(connection, "POST", JOBS, b"x" * (2 * 1024 * 1024))
    assert refused.status == 401
    assert refused.getheader("Connection") == "close"
    # http.client reconnects by itself: the next request is answered normally.
    assert _exchange(connection, "GET", JOBS, headers=AUTH).status == 200


def test_a_chunked_body_closes_the_connection(connection: http.client.HTTPConnection) -> None:
    created = _exchange(
        connection,
        "POST",
        JOBS,
        json.dumps(
            {
                "endpoint": "/v1/chat/completions",
                "model": "mistral-small-latest",
                "requests": [{"custom_id": "0", "body": {"messages": []}}],
            }
        ).encode(),
        {**AUTH, "Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        chunked=True,
    )
    assert created.status == 200
    assert created.getheader("Connection") == "close"


def test_a_client_that_asks_to_close_gets_its_connection_closed(
    connection: http.client.HTTPConnection,
) -> None:
    answer = _exchange(connection, "GET", JOBS, headers={**AUTH, "Connection": "close"})
    assert answer.status == 200
    assert answer.getheader("Connection") == "close"
