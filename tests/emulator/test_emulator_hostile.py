"""Hostile requests get a 4xx in the API's error shape, never a 500, and the emulator keeps
serving (issue 10). Hypothesis drives the WSGI app in-process for breadth; a handful of cases
go over real HTTP to ``reconciler emulator serve`` to prove the process survives them.

No fault is configured here, so any 5xx is a bug: every test fails on one.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from emulator_support import JOBS, chat_request, create_job, upload
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import Client

from reconciler.emulator import Emulator, ManualClock

TOKEN = {"Authorization": "Bearer fuzz"}
UUID = "6b9f0b1e-1111-4a1a-9a1a-000000000000"


def _not_json(name: str) -> Any:
    raise AssertionError(f"{name} in a response: not JSON")


def _shaped(status: int, data: bytes) -> None:
    """A response the API could give: below 500, JSON, errors in one of its shapes."""
    assert status < 500, (status, data[:500])
    body = json.loads(data, parse_constant=_not_json)  # strict: no NaN/Infinity
    if status >= 400:
        assert isinstance(body, dict)
        if "detail" in body:  # FastAPI: 422 list, or a string for 404/405
            assert isinstance(body["detail"], list | str)
        elif status == 401:
            assert body["message"] == "Unauthorized"
        else:
            assert body["object"] == "error" and isinstance(body["message"], str)


@pytest.fixture
def wsgi(emulator: Emulator) -> Client:
    return Client(emulator)


def _call(wsgi: Client, method: str, path: str, **kw: Any) -> tuple[int, bytes]:
    response = wsgi.open(path, method=method, **kw)
    data = response.get_data()
    response.close()
    return response.status_code, data


# --- breadth: Hypothesis over the WSGI app --------------------------------------------------------

_numbers = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**4000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["1e308", "1e400", "-0", "NaN", "Infinity", "9" * 5000, "0x10", "١٢"]),
)
_scalars = st.one_of(
    st.none(), st.booleans(), st.text(max_size=30), st.integers(), st.floats(allow_nan=False)
)
_json = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_paths = st.sampled_from(
    [
        JOBS,
        f"{JOBS}/{UUID}",
        f"{JOBS}/not-a-uuid",
        f"{JOBS}/{UUID}/cancel",
        "/v1/files",
        f"/v1/files/{UUID}",
        f"/v1/files/{UUID}/content",
        f"/v1/files/{UUID}/url",
        "/v1/models",
        "/v1/models/mistral-small-latest",
        "/v1/models/ft:a:b",
        "/v1/nope",
        "/v1/files/%00",
        "/v1/batch/jobs/%ff%fe",
        "/_emulator/faults",
        "/_emulator/clock",
        "/_emulator/settings",
        "/_emulator/requests",
        f"/_emulator/blobs/{UUID}",
    ]
)
_params = st.dictionaries(
    st.sampled_from(
        [
            "page",
            "page_size",
            "expiry",
            "inline",
            "created_after",
            "status",
            "order_by",
            "metadata",
            "purpose",
            "model",
            "include_total",
            "se",
            "sig",
            "owner",
            "x",
        ]
    ),
    st.one_of(_numbers.map(str), st.text(max_size=40)),
    max_size=4,
)
_bodies = st.one_of(
    st.none(),
    st.binary(max_size=200),
    _json.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(
        [
            b"[" * 5000 + b"]" * 5000,
            b'{"a":' * 300 + b"1" + b"}" * 300,
            b'{"endpoint": NaN}',
            b'{"timeout_hours": 1e400, "endpoint": "/v1/chat/completions"}',
            b'{"endpoint": "/v1/chat/completions", "timeout_hours": ' + b"9" * 5000 + b"}",
            b'{"endpoint": "/v1/chat/completions", "model": "mistral-small-latest",'
            b' "metadata": {"k": "\\ud800"}, "requests": [{"body": {}}]}',
            b"\xff\xfe\x00\x00",
            b'--b\r\nContent-Disposition: form-data; name="file"; filename="a"\r\n\r\nxx',
        ]
    ),
)
_types = st.sampled_from(
    [
        None,
        "application/json",
        "text/plain",
        "multipart/form-data",
        "multipart/form-data; boundary=b",
        "application/x-www-form-urlencoded",
        "application/json; charset=utf-32",
        "\x00/\x00",
    ]
)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]),
    path=_paths,
    params=_params,
    body=_bodies,
    content_type=_types,
    token=st.sampled_from(["Bearer fuzz", "", "Bearer ", "Basic x", "Bearer " + "k" * 10_000]),
)
def test_no_request_gets_a_5xx(
    wsgi: Client,
    method: str,
    path: str,
    params: dict[str, str],
    body: bytes | None,
    content_type: str | None,
    token: str,
) -> None:
    headers = {"Authorization": token}
    if content_type is not None:
        headers["Content-Type"] = content_type
    status, data = _call(wsgi, method, path, query_string=params, data=body, headers=headers)
    if method == "HEAD":
        assert status < 500
        return
    _shaped(status, data)
    if path.startswith("/_emulator/") and method in ("PUT", "POST") and status == 200:
        # Whatever the fuzz set (latency, failures, a clock jump...) is a valid setting;
        # put the defaults back so the next example is not slowed by it.
        assert _call(wsgi, "PUT", "/_emulator/faults", json={})[0] == 200
        assert (
            _call(wsgi, "PUT", "/_emulator/settings", json={"speed": 1, "hour_length": 3600})[0]
            == 200
        )


_query_value = st.one_of(
    _numbers.map(str),
    st.text(max_size=40),
    st.sampled_from(["0001-01-01T00:00:00+23:59", "9999-12-31T23:59:59-23:59", "1e400", "nan"]),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [JOBS, "/v1/files", "/v1/models", f"/v1/files/{UUID}/url", f"{JOBS}/{UUID}"]
    ),
    params=st.lists(
        st.tuples(
            st.sampled_from(
                [
                    "page",
                    "page_size",
                    "created_after",
                    "status",
                    "order_by",
                    "metadata",
                    "expiry",
                    "inline",
                    "include_total",
                    "created_by_me",
                    "sample_type",
                    "k",
                ]
            ),
            _query_value,
        ),
        max_size=5,
    ),
)
def test_hostile_query_parameters_get_a_4xx(
    wsgi: Client, path: str, params: list[tuple[str, str]]
) -> None:
    status, data = _call(wsgi, "GET", path, query_string=params, headers=TOKEN)
    _shaped(status, data)


_hostile_value = st.one_of(_json, _numbers, st.text(max_size=5000))


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "endpoint": st.one_of(st.just("/v1/chat/completions"), _hostile_value),
            "model": st.one_of(st.just("mistral-small-latest"), _hostile_value),
            "agent_id": _hostile_value,
            "metadata": st.one_of(
                st.dictionaries(st.text(max_size=40), _hostile_value, max_size=3), _hostile_value
            ),
            "timeout_hours": _hostile_value,
            "input_files": st.one_of(st.lists(st.just(UUID), max_size=2), _hostile_value),
            "requests": st.one_of(
                st.lists(
                    st.fixed_dictionaries(
                        {"body": st.dictionaries(st.text(max_size=10), _hostile_value, max_size=3)},
                        optional={"custom_id": _hostile_value},
                    ),
                    max_size=3,
                ),
                _hostile_value,
            ),
        },
    )
)
def test_hostile_create_bodies_get_a_4xx_or_a_job(wsgi: Client, body: dict[str, Any]) -> None:
    raw = json.dumps(body).encode()
    status, data = _call(wsgi, "POST", JOBS, data=raw, headers=TOKEN)
    _shaped(status, data)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(
        st.sampled_from(["purpose", "expiry", "visibility", "x"]), _query_value, max_size=3
    ),
    name=st.text(max_size=60),
    content=st.binary(max_size=300),
)
def test_hostile_uploads_get_a_4xx_or_a_file(
    wsgi: Client, fields: dict[str, str], name: str, content: bytes
) -> None:
    import io

    form: dict[str, Any] = {**fields, "file": (io.BytesIO(content), name or "f")}
    status, data = _call(wsgi, "POST", "/v1/files", data=form, headers=TOKEN)
    _shaped(status, data)
    if status == 200:
        file_id = json.loads(data)["id"]
        status, data = _call(wsgi, "GET", f"/v1/files/{file_id}/content", headers=TOKEN)
        assert status == 200 and data == content


_extreme: st.SearchStrategy[Any] = st.one_of(
    st.floats(),  # NaN, inf, 1e308 ...
    st.integers(min_value=-(10**40), max_value=10**40),
    st.sampled_from([1e308, -1e308, 5e-324, 10**4000, True, None, "1", [], {}]),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    faults=st.dictionaries(
        st.sampled_from(
            [
                "latency",
                "rate_429",
                "rate_5xx",
                "drop_creates",
                "rate_limit",
                "retry_after",
                "fail_requests",
                "fail_requests_permanent",
                "max_requests_per_job",
                "max_pending_requests",
            ]
        ),
        _extreme,
        max_size=4,
    ),
    clock=_extreme,
    speed=_extreme,
)
def test_hostile_admin_settings_are_refused_and_the_api_keeps_working(
    wsgi: Client, faults: dict[str, Any], clock: Any, speed: Any
) -> None:
    for path, method, body in (
        ("/_emulator/faults", "PUT", faults),
        ("/_emulator/clock", "POST", {"advance": clock}),
        ("/_emulator/settings", "PUT", {"speed": speed}),
        ("/_emulator/settings", "PUT", {"hour_length": speed}),
    ):
        raw = json.dumps(body, allow_nan=True).encode()  # NaN/Infinity as a hostile client sends
        status, data = _call(
            wsgi, method, path, data=raw, headers={"Content-Type": "application/json"}
        )
        _shaped(status, data)
    # Whatever was accepted, the API still answers (latency and faults put back first).
    assert _call(wsgi, "PUT", "/_emulator/faults", json={})[0] == 200
    assert _call(wsgi, "PUT", "/_emulator/settings", json={"speed": 1})[0] == 200
    status, data = _call(wsgi, "GET", JOBS, headers=TOKEN)
    _shaped(status, data)
    assert status == 200
    status, data = _call(wsgi, "GET", "/_emulator/clock")
    assert status == 200 and json.loads(data)["now"] < 1e15


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"endpoint": ' + b"[" * 900 + b"]" * 900 + b"}",
        b'{"endpoint": "/v1/chat/completions", "timeout_hours": ' + b"9" * 5000 + b"}",
        b'{"endpoint": NaN}',
        b'{"endpoint": "/v1/chat/completions", "timeout_hours": 1e400}',
        b'{"endpoint": "/v1/chat/completions", "model": "mistral-small-latest",'
        b' "metadata": {"k": "\\ud800"}, "requests": [{"body": {}}]}',
        b"\xff\xfe{}",
        b"",
    ],
)
def test_hostile_json_bodies_get_a_422(wsgi: Client, raw: bytes) -> None:
    status, data = _call(wsgi, "POST", JOBS, data=raw, headers=TOKEN)
    _shaped(status, data)
    assert status == 422


# --- hostile input files ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            b'{"custom_id": "0", "body": {"messages": []}}\n' + b"\xff\xfe\n",
            "line 2: not valid UTF-8",
        ),
        (b'{"custom_id": "0", "body": {"messages": [\x00]}}\n', "line 1: not valid JSON"),
        (
            b'{"custom_id": "\\ud800", "body": {}}\n',
            "line 1: not valid JSON (a string holds a lone",
        ),
        (b'{"custom_id": "0", "body": ' + b"[" * 3000 + b"]" * 3000 + b"}\n", "nested deeper"),
        (b'{"custom_id": "0", "body": {"n": ' + b"9" * 5000 + b"}}\n", "line 1: not valid JSON"),
        (b'{"custom_id": "0", "body": {"n": NaN}}\n', "line 1: not valid JSON"),
        (b"\x00" * 1000, "line 1: not valid JSON"),
    ],
)
def test_hostile_input_files_are_refused_at_create_naming_the_line(
    emulator_client: httpx.Client, content: bytes, problem: str
) -> None:
    file_id = upload(emulator_client, content)["id"]
    response = emulator_client.post(
        JOBS,
        json={
            "endpoint": "/v1/chat/completions",
            "model": "mistral-small-latest",
            "input_files": [file_id],
        },
    )
    assert response.status_code == 422, response.text
    (item,) = response.json()["detail"]
    assert item["loc"] == ["body", "input_files", 0]
    assert problem in item["msg"]


def test_a_huge_line_is_refused_without_reading_it_whole(
    emulator: Emulator, emulator_client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.emulator import validation

    monkeypatch.setattr(validation, "MAX_LINE_BYTES", 1000)
    file_id = upload(
        emulator_client, b'{"custom_id": "0", "body": {"x": "' + b"a" * 5000 + b'"}}\n'
    )["id"]
    response = emulator_client.post(
        JOBS,
        json={
            "endpoint": "/v1/chat/completions",
            "model": "mistral-small-latest",
            "input_files": [file_id],
        },
    )
    assert response.status_code == 422 and "longer than 1000 bytes" in response.text


def test_stored_names_never_break_a_download_header(emulator_client: httpx.Client) -> None:
    file = upload(emulator_client, b"{}\n", filename='a"\r\nX-Injected: 1\x00é.jsonl')
    response = emulator_client.get(f"/v1/files/{file['id']}/content")
    assert response.status_code == 200
    assert "x-injected" not in response.headers
    assert response.headers["content-disposition"].startswith('attachment; filename="')


def test_request_bodies_are_bounded(wsgi: Client) -> None:
    status, data = _call(wsgi, "GET", JOBS, data=b"x" * (2 * 1024 * 1024), headers=TOKEN)
    assert status == 200  # a body nobody reads is ignored...
    status, data = _call(wsgi, "PUT", "/_emulator/faults", data=b" " * (2 * 1024 * 1024))
    assert status == 413  # ...one that would be read is refused beyond its bound
    _shaped(status, data)


# --- over real HTTP: the process keeps serving -----------------------------------------------


def _raw(url: str, data: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(data)
        out = b""
        while chunk := conn.recv(65536):
            out += chunk
    return out


def test_a_served_emulator_survives_hostile_http(
    emulator_server: Callable[..., Any], tmp_path: Path
) -> None:
    served = emulator_server()
    get = b"GET /v1/batch/jobs HTTP/1.1\r\nHost: x\r\n"
    post = b"POST /v1/batch/jobs HTTP/1.1\r\nHost: x\r\n"
    auth = b"Authorization: Bearer t\r\nConnection: close\r\n"
    many_headers = b"".join(b"X-%d: 1\r\n" % i for i in range(200))
    cut_multipart = b'--b\r\nContent-Disposition: form-data; name="file"; filename='
    cases = [
        get + auth + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n",  # a huge header
        get + many_headers + b"\r\n",
        b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a huge request line
        post + auth + b"Content-Length: 200000000\r\n\r\n{}",  # beyond the body bound
        post + auth + b"Content-Length: 10000\r\n\r\n" + b"[" * 10_000,  # deeply nested
        b"POST /v1/files HTTP/1.1\r\nHost: x\r\n"
        + auth
        + b"Content-Type: multipart/form-data; boundary=b\r\n"
        + b"Content-Length: %d\r\n\r\n" % len(cut_multipart)
        + cut_multipart,
        b"PUT /_emulator/faults HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        + b'Content-Length: 17\r\n\r\n{"latency": NaN}\n',
    ]
    for case in cases:
        reply = _raw(served.url, case)
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, reply[:300]
        head, _, data = reply.partition(b"\r\n\r\n")
        assert b"application/json" in head.lower(), head
        _shaped(status, data)
    # Still serving, and still correct.
    with httpx.Client(base_url=served.url, headers={"Authorization": "Bearer t"}) as client:
        job = create_job(client, requests=[chat_request("0")])
        assert client.get(f"{JOBS}/{job['id']}").status_code == 200
    assert served.process.poll() is None
    assert "Traceback" not in served.stderr()


def test_the_fuzz_can_see_a_500(
    wsgi: Client, emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks above would catch a crash: a handler that raises is a 5xx they reject."""
    from reconciler.emulator import jobs

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(jobs.Jobs, "list", boom)
    with pytest.raises(Exception):  # noqa: B017 - either way: not a clean 4xx
        status, data = _call(wsgi, "GET", JOBS, headers=TOKEN)
        _shaped(status, data)


def test_clock_stays_sane(emulator: Emulator, emulator_clock: ManualClock) -> None:
    assert emulator.now() == emulator_clock.now()
