"""What goes on the wire: identical to what the official mistralai SDK 3.7 sends."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scripted_transport import BASE, FILE, JOB, Scripted, reply

from reconciler.client import MistralClient
from reconciler.errors import ApiError

mistralai = pytest.importorskip("mistralai.client")

LIST = {"object": "list", "data": [], "total": 0}


def _answer(request: httpx.Request) -> httpx.Response:
    """Well-formed answers for every operation, so the SDK parses them happily."""
    path = request.url.path
    if path.endswith("/content"):
        return httpx.Response(
            200, content=b"abc", headers={"content-type": "application/octet-stream"}
        )
    if request.method == "GET" and path in ("/v1/batch/jobs", "/v1/files"):
        return httpx.Response(200, json=LIST)
    if path.startswith("/v1/files"):
        return httpx.Response(200, json={**FILE, "deleted": request.method == "DELETE"})
    if request.method == "DELETE":
        return httpx.Response(200, json={"id": "job-1", "object": "batch", "deleted": True})
    return httpx.Response(200, json=JOB)


class Capture(httpx.BaseTransport):
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return _answer(request)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def sdk() -> Iterator[tuple[Any, Capture]]:
    capture = Capture()
    http = httpx.Client(transport=capture)
    yield mistralai.Mistral(api_key="sk-x", server_url=BASE, client=http), capture
    http.close()


@pytest.fixture
def ours() -> Iterator[tuple[MistralClient, Capture]]:
    capture = Capture()
    client = MistralClient(BASE, "sk-x", transport=capture)
    yield client, capture
    client.close()


def _same_request(a: httpx.Request, b: httpx.Request) -> None:
    assert a.method == b.method
    assert str(a.url) == str(b.url)
    assert a.headers["authorization"] == b.headers["authorization"]
    assert a.headers.get("accept") == b.headers.get("accept")


LIST_CASES: list[dict[str, Any]] = [
    {},
    {"metadata": {"reconciler.workspace": "research-evals"}, "order_by": "created"},
    {
        "metadata": {"reconciler.workspace": "evals", "team": "a b&c=d/é", "x": "1+1"},
        "status": ["QUEUED", "RUNNING"],
        "order_by": "created",
        "page": 3,
        "page_size": 7,
    },
    {"model": "mistral-small-latest", "created_by_me": True, "order_by": "-created"},
    {"agent_id": "ag-1", "status": ["SUCCESS"], "order_by": "created"},
    {"created_after": datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "order_by": "created"},
    {"created_after": datetime(2024, 1, 2, 3, 4, 5, 123, tzinfo=UTC), "order_by": "created"},
    {
        "created_after": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        "order_by": "created",
    },
]


@pytest.mark.parametrize("kwargs", LIST_CASES)
def test_list_jobs_query_is_the_sdks(
    kwargs: dict[str, Any],
    sdk: tuple[Any, Capture],
    ours: tuple[MistralClient, Capture],
) -> None:
    mistral, sdk_seen = sdk
    client, our_seen = ours
    # The SDK defaults to newest first; we always pass order_by explicitly.
    mistral.batch.jobs.list(**{"order_by": "created", **kwargs})
    client.list_jobs(**kwargs)
    _same_request(our_seen.last, sdk_seen.last)


def test_list_jobs_query_string_spelled_out(ours: tuple[MistralClient, Capture]) -> None:
    client, seen = ours
    client.list_jobs(
        metadata={"reconciler.workspace": "evals", "team": "x y"},
        status=["QUEUED", "RUNNING"],
        created_after=datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    )
    assert seen.last.url.query.decode() == (
        "page=0&page_size=100&reconciler.workspace=evals&team=x+y"
        "&created_after=2024-05-06T07%3A08%3A09Z&created_by_me=false"
        "&status=QUEUED&status=RUNNING&order_by=created"
    )


metadata_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(
    metadata=st.dictionaries(
        metadata_text.filter(
            lambda k: k not in {"page", "page_size", "created_by_me", "status", "order_by", "model"}
        ),
        metadata_text,
        max_size=4,
    ),
    status=st.lists(st.sampled_from(["QUEUED", "RUNNING", "SUCCESS", "FAILED"]), max_size=3),
    page=st.integers(0, 1000),
)
def test_list_jobs_query_matches_the_sdk_for_any_metadata(
    metadata: dict[str, str], status: list[str], page: int
) -> None:
    sdk_seen, our_seen = Capture(), Capture()
    with httpx.Client(transport=sdk_seen) as http:
        mistral = mistralai.Mistral(api_key="sk-x", server_url=BASE, client=http)
        mistral.batch.jobs.list(
            metadata=metadata or None, status=status or None, page=page, order_by="created"
        )
    with MistralClient(BASE, "sk-x", transport=our_seen) as client:
        client.list_jobs(metadata=metadata, status=status, page=page)
    _same_request(our_seen.last, sdk_seen.last)


def test_job_operations_are_the_sdks(
    sdk: tuple[Any, Capture], ours: tuple[MistralClient, Capture]
) -> None:
    mistral, sdk_seen = sdk
    client, our_seen = ours
    body = {
        "endpoint": "/v1/chat/completions",
        "input_files": ["f-1"],
        "model": "m",
        "metadata": {"reconciler.workspace": "w"},
        "timeout_hours": 24,
    }
    mistral.batch.jobs.create(**body)
    client.create_job(body)
    _same_request(our_seen.last, sdk_seen.last)
    assert json.loads(our_seen.last.content) == json.loads(sdk_seen.last.content)
    assert our_seen.last.headers["content-type"] == "application/json"

    calls: list[tuple[Callable[[], object], Callable[[], object]]] = [
        (lambda: mistral.batch.jobs.get(job_id="job-1"), lambda: client.get_job("job-1")),
        (
            lambda: mistral.batch.jobs.get(job_id="job-1", inline=True),
            lambda: client.get_job("job-1", inline=True),
        ),
        (lambda: mistral.batch.jobs.cancel(job_id="job-1"), lambda: client.cancel_job("job-1")),
        (lambda: mistral.batch.jobs.delete(job_id="job-1"), lambda: client.delete_job("job-1")),
        (lambda: mistral.files.retrieve(file_id="file-1"), lambda: client.get_file("file-1")),
        (lambda: mistral.files.delete(file_id="file-1"), lambda: client.delete_file("file-1")),
        (mistral.files.list, client.list_files),
        (
            lambda: mistral.files.list(search="in put", purpose="batch", page=2, page_size=5),
            lambda: client.list_files(search="in put", purpose="batch", page=2, page_size=5),
        ),
    ]
    for sdk_call, our_call in calls:
        sdk_call()
        our_call()
        _same_request(our_seen.last, sdk_seen.last)
        assert our_seen.last.content == sdk_seen.last.content == b""


def test_download_is_the_sdks(
    sdk: tuple[Any, Capture], ours: tuple[MistralClient, Capture]
) -> None:
    mistral, sdk_seen = sdk
    client, our_seen = ours
    mistral.files.download(file_id="file-1")
    out = BytesIO()
    assert client.download_file("file-1", out) == 3
    assert out.getvalue() == b"abc"
    _same_request(our_seen.last, sdk_seen.last)


def _form_parts(request: httpx.Request) -> list[tuple[str, str | None, bytes]]:
    """(name, filename, content) of each multipart part, boundary aside."""
    boundary = request.headers["content-type"].split("boundary=")[1].encode()
    parts = []
    for chunk in request.content.split(b"--" + boundary)[1:-1]:
        head, _, body = chunk[2:-2].partition(b"\r\n\r\n")  # each part is framed by CRLFs
        disposition = head.split(b"\r\n")[0].decode()
        name = disposition.split('name="')[1].split('"')[0]
        filename = (
            disposition.split('filename="')[1].split('"')[0] if "filename=" in disposition else None
        )
        parts.append((name, filename, body))
    return parts


def test_upload_is_the_sdks(
    tmp_path: Path, sdk: tuple[Any, Capture], ours: tuple[MistralClient, Capture]
) -> None:
    mistral, sdk_seen = sdk
    client, our_seen = ours
    data = tmp_path / "local-name.jsonl"
    content = b'{"custom_id": "0", "body": {"messages": []}}\n'
    data.write_bytes(content)
    mistral.files.upload(file={"file_name": "in-abc123.jsonl", "content": content}, purpose="batch")
    assert client.upload_file(data, filename="in-abc123.jsonl")["id"] == "file-1"
    _same_request(our_seen.last, sdk_seen.last)
    assert our_seen.last.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert _form_parts(our_seen.last) == _form_parts(sdk_seen.last)
    assert _form_parts(our_seen.last)[-1] == ("file", "in-abc123.jsonl", content)


def test_ids_cannot_escape_their_path_segment(ours: tuple[MistralClient, Capture]) -> None:
    client, seen = ours
    client.get_job("../files/x?inline=true")
    assert seen.last.url.raw_path == b"/v1/batch/jobs/..%2Ffiles%2Fx%3Finline%3Dtrue"


def test_base_url_with_a_path_prefix(tmp_path: Path) -> None:
    seen = Capture()
    with MistralClient("http://127.0.0.1:9/proxy/", "k", transport=seen) as client:
        client.get_job("j")
    assert str(seen.last.url) == "http://127.0.0.1:9/proxy/v1/batch/jobs/j"


def test_user_agent_and_no_key_header_when_keyless() -> None:
    seen = Capture()
    with MistralClient(BASE, None, transport=seen, user_agent="ua/1") as client:
        client.get_job("j")
    assert seen.last.headers["user-agent"] == "ua/1"
    assert "authorization" not in seen.last.headers


# -- pagination --------------------------------------------------------------------------


def _pager(total: int | None, items: int, *, honour_page: bool = True) -> Scripted:
    jobs = [{**JOB, "id": f"job-{i:04d}"} for i in range(items)]

    def answer(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"]) if honour_page else 0
        size = int(request.url.params["page_size"])
        body: dict[str, Any] = {"object": "list", "data": jobs[page * size : (page + 1) * size]}
        if total is not None:
            body["total"] = total
        return httpx.Response(200, json=body)

    return Scripted(then=answer)


@pytest.mark.parametrize(
    ("items", "expected_calls"), [(0, 1), (1, 1), (9, 1), (10, 1), (11, 2), (30, 3), (31, 4)]
)
def test_pages_use_total_to_stop(items: int, expected_calls: int) -> None:
    transport = _pager(items, items)
    with MistralClient(BASE, "k", transport=transport) as client:
        pages = list(client.iter_job_pages(page_size=10))
        assert sum(len(p) for p in pages) == items
        assert client.stats["list_jobs"] == expected_calls
    assert [r.url.params["page"] for r in transport.requests] == [
        str(i) for i in range(expected_calls)
    ]


def test_pages_without_total_stop_at_a_short_page() -> None:
    transport = _pager(None, 20)
    with MistralClient(BASE, "k", transport=transport) as client:
        pages = list(client.iter_job_pages(page_size=10))
    assert [len(p) for p in pages] == [10, 10, 0]


def test_a_server_ignoring_pages_is_an_error_not_a_loop() -> None:
    transport = _pager(None, 50, honour_page=False)
    with (
        MistralClient(BASE, "k", transport=transport) as client,
        pytest.raises(ApiError, match="ignores pagination"),
    ):
        list(client.iter_job_pages(page_size=10))
    assert len(transport.requests) == 2


def test_a_listing_without_data_is_an_error() -> None:
    transport = Scripted(reply(200, {"object": "list"}))
    with (
        MistralClient(BASE, "k", transport=transport) as client,
        pytest.raises(ApiError, match="without a 'data' list"),
    ):
        list(client.iter_job_pages())


def test_file_pages() -> None:
    files = [{**FILE, "id": f"f{i}"} for i in range(5)]

    def answer(request: httpx.Request) -> httpx.Response:
        page, size = int(request.url.params["page"]), int(request.url.params["page_size"])
        chunk = files[page * size : (page + 1) * size]
        return httpx.Response(200, json={"object": "list", "data": chunk, "total": 5})

    with MistralClient(BASE, "k", transport=Scripted(then=answer)) as client:
        got = [f["id"] for page in client.iter_file_pages(page_size=2) for f in page]
        assert got == ["f0", "f1", "f2", "f3", "f4"]
        assert client.stats["list_files"] == 3


# -- concurrency -------------------------------------------------------------------------


def test_one_client_serves_many_threads() -> None:
    lock = threading.Lock()
    in_flight = 0
    peak = 0
    barrier = threading.Barrier(16, timeout=10)

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        barrier.wait()  # all 16 must be in flight at once, or this times out
        with lock:
            in_flight -= 1
        return httpx.Response(200, json={**JOB, "id": request.url.path.rsplit("/", 1)[1]})

    with MistralClient(BASE, "k", transport=Scripted(then=answer)) as client:
        with ThreadPoolExecutor(16) as pool:
            got = list(pool.map(client.get_job, [f"j{i}" for i in range(16)]))
        assert [g["id"] for g in got] == [f"j{i}" for i in range(16)]
        assert client.stats["get_job"] == 16
        assert client.attempts["get_job"] == 16
    assert peak == 16
