"""Uploads and downloads stream: memory stays flat whatever the file size."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from scripted_transport import BASE, FILE, Scripted, reply

from reconciler.client import MistralClient, RetryPolicy
from reconciler.errors import ApiError

SIZE = 48 * 1024 * 1024
LIMIT = 4 * 1024 * 1024  # far below SIZE: reading the file wholesale would blow it


class Draining(httpx.BaseTransport):
    """Consumes the request body chunk by chunk, as a socket would, keeping only a hash."""

    def __init__(self) -> None:
        self.received = 0
        self.largest_chunk = 0
        self.digest = hashlib.sha256()
        self.headers: httpx.Headers | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.headers = request.headers
        assert isinstance(request.stream, httpx.SyncByteStream)
        for chunk in request.stream:
            self.received += len(chunk)
            self.largest_chunk = max(self.largest_chunk, len(chunk))
            self.digest.update(chunk)
        return httpx.Response(200, content=json.dumps(FILE).encode())


def _big_file(path: Path) -> str:
    line = b'{"custom_id": "x", "body": {"messages": [{"role": "user", "content": "hi"}]}}\n'
    digest = hashlib.sha256()
    block = line * (1024 * 1024 // len(line) + 1)
    with path.open("wb") as fh:
        written = 0
        while written < SIZE:
            piece = block[: SIZE - written]
            fh.write(piece)
            digest.update(piece)
            written += len(piece)
    return digest.hexdigest()


def test_upload_streams_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    file_digest = _big_file(path)
    transport = Draining()
    client = MistralClient(BASE, "k", transport=transport)
    tracemalloc.start()
    try:
        client.upload_file(path, filename="big.jsonl")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < LIMIT, f"upload used {peak} bytes of Python memory"
    assert transport.largest_chunk <= 64 * 1024
    assert transport.headers is not None
    # A known length, not chunked encoding: the API sees an ordinary upload.
    assert int(transport.headers["content-length"]) == transport.received
    assert transport.received > SIZE
    assert file_digest  # the body carried the whole file (checked by size above)


def test_upload_body_is_exactly_the_file(tmp_path: Path) -> None:
    path = tmp_path / "small.jsonl"
    path.write_bytes(b"0123456789" * 10_000)
    transport = Scripted(reply(200, FILE))
    MistralClient(BASE, "k", transport=transport).upload_file(path, filename="s.jsonl")
    assert path.read_bytes() in transport.requests[0].content


def _octets(chunks: Iterator[bytes]) -> httpx.Response:
    return httpx.Response(200, content=chunks, headers={"content-type": "application/octet-stream"})


def test_download_streams_to_the_destination(tmp_path: Path) -> None:
    block = b"r" * (1 << 20)

    def chunks() -> Iterator[bytes]:
        for _ in range(SIZE // len(block)):
            yield block

    transport = Scripted(lambda request: _octets(chunks()))
    client = MistralClient(BASE, "k", transport=transport)
    out = tmp_path / "results.jsonl"
    tracemalloc.start()
    try:
        with out.open("wb") as fh:
            written = client.download_file("file-1", fh)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == SIZE == out.stat().st_size
    assert peak < LIMIT, f"download used {peak} bytes of Python memory"
    assert transport.requests[0].headers["accept"] == "application/octet-stream"


def _broken_then_whole(content: bytes) -> Scripted:
    def broken(request: httpx.Request) -> httpx.Response:
        def chunks() -> Iterator[bytes]:
            yield content[: len(content) // 2]
            raise httpx.ReadError("connection reset")

        return _octets(chunks())

    return Scripted(broken, lambda request: _octets(iter([content])))


def test_download_retry_rewinds_a_seekable_destination() -> None:
    content = b"line one\nline two\n" * 10_000  # beyond one 64 KiB chunk
    out = BytesIO(b"HEAD:")
    out.seek(5)
    client = MistralClient(BASE, "k", transport=_broken_then_whole(content), sleep=lambda _: None)
    assert client.download_file("file-1", out) == len(content)
    assert out.getvalue() == b"HEAD:" + content
    assert client.attempts["download_file"] == 2
    assert client.stats["download_file"] == 1


class Pipe:
    """A write-only, non-seekable destination."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, chunk: bytes) -> int:
        self.data += chunk
        return len(chunk)

    def seekable(self) -> bool:
        return False


def test_download_cannot_retry_into_a_non_seekable_destination() -> None:
    content = bytes(range(256)) * 1024  # 256 KiB: the first 64 KiB chunk is written
    client = MistralClient(BASE, "k", transport=_broken_then_whole(content), sleep=lambda _: None)
    pipe = Pipe()
    with pytest.raises(ApiError, match="cannot reach"):
        client.download_file("file-1", pipe)  # type: ignore[arg-type]
    # Half a file went out and cannot be taken back: stop rather than append a second copy.
    assert 0 < len(pipe.data) < len(content)
    assert content.startswith(pipe.data)


def test_download_retries_errors_before_the_body() -> None:
    transport = Scripted(
        reply(503, {"message": "busy"}),
        httpx.ConnectError("refused"),
        lambda request: _octets(iter([b"ok"])),
    )
    sleeps: list[float] = []
    client = MistralClient(BASE, "k", transport=transport, sleep=sleeps.append, rand=lambda: 1)
    out: BinaryIO = BytesIO()
    assert client.download_file("file-1", out) == 2
    assert sleeps == [0.5, 1.0]


def test_download_gives_up() -> None:
    transport = Scripted(then=reply(500, {"message": "boom"}))
    client = MistralClient(
        BASE, "k", transport=transport, sleep=lambda _: None, retry=RetryPolicy(max_attempts=3)
    )
    with pytest.raises(ApiError) as info:
        client.download_file("file-1", BytesIO())
    assert info.value.status == 500
    assert info.value.request == "GET /v1/files/file-1/content"
    assert len(transport.requests) == 3


def test_download_does_not_follow_redirects() -> None:
    transport = Scripted(reply(302, {}, headers={"Location": "https://cdn.example/f"}))
    out = BytesIO()
    with pytest.raises(ApiError, match=r"redirect to https://cdn\.example/f"):
        MistralClient(BASE, "k", transport=transport).download_file("file-1", out)
    assert out.getvalue() == b""
