"""Calling the emulator in-process through httpx, without a socket.

``httpx.WSGITransport`` reads the whole request body into memory before calling the app
(``request.read()``), which a 512 MB upload must not do; this transport hands the app a
file-like view of the request stream instead, and maps a dropped response to the exception
a real dropped connection raises.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from reconciler.emulator.app import DroppedResponse

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

LOCAL_BASE_URL = "http://emulator.invalid"  # never resolved: no socket is opened


class _ChunkReader(io.RawIOBase):
    """A readable raw stream over an iterator of byte chunks (the request body)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks: Iterator[bytes] = iter(chunks)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = bytes(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, result: Iterable[bytes]) -> None:
        self._result = result

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._result:
            if chunk:
                yield chunk

    def close(self) -> None:
        close = getattr(self._result, "close", None)
        if close is not None:
            close()


class InProcessTransport(httpx.BaseTransport):
    """An httpx transport that calls a WSGI app (the emulator), streaming both bodies."""

    def __init__(self, emulator: WSGIApplication, *, remote_addr: str = "127.0.0.1") -> None:
        self.app = emulator
        self.remote_addr = remote_addr

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = io.BufferedReader(_ChunkReader(request.stream), buffer_size=256 * 1024)  # type: ignore[arg-type]
        port = request.url.port or {"http": 80, "https": 443}.get(request.url.scheme, 80)
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": request.url.scheme,
            "wsgi.input": body,
            # The reader ends where the body ends (chunked or not): let the app read to EOF.
            "wsgi.input_terminated": True,
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": request.url.path,
            "QUERY_STRING": request.url.query.decode("ascii"),
            "SERVER_NAME": request.url.host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
        }
        for raw_key, raw_value in request.headers.raw:
            key = raw_key.decode("latin-1").upper().replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = raw_value.decode("latin-1")

        started: list[Any] = []

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            started[:] = [status, headers]
            return lambda _data: None

        try:
            result = self.app(environ, start_response)
        except DroppedResponse:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from None
        status, headers = started
        return httpx.Response(
            int(status.split(None, 1)[0]),
            headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            stream=_ResponseStream(result),
            request=request,
        )


def in_process_client(
    emulator: WSGIApplication,
    *,
    api_key: str = "local",
    base_url: str = LOCAL_BASE_URL,
    timeout: float = 30.0,
) -> httpx.Client:
    """An httpx client bound to an in-process emulator, authenticated with ``api_key``."""
    return httpx.Client(
        base_url=base_url,
        transport=InProcessTransport(emulator),
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=timeout,
    )
