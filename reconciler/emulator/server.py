"""Serving the emulator over HTTP with Werkzeug's threaded server (a thread per connection).

Werkzeug's development server closes every connection after one response, because
``http.server`` cannot tell where an unread request body ends. The real API keeps
connections alive, and a new connection (and server thread) per request cost client and
server about as much CPU as the request itself. So the emulator keeps a connection when it
can find the next request line: the body has a ``Content-Length`` and what the application
left unread of it is small enough to read and discard. Otherwise (a chunked body, a large
unread upload, an error, the client asking to close) the connection closes as before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wsgi import LimitedStream

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

_HANDLER_KEY = "reconciler.emulator.handler"
_MAX_DISCARD = 1024 * 1024  # unread request body worth reading to keep the connection


class _Discarded:
    """Stands in for the socket's reader while Werkzeug "drains" it after a response: what
    follows on a kept connection is the next request, not this one's leftovers."""

    def read(self, size: int = -1) -> bytes:
        return b""


class _Handler(WSGIRequestHandler):
    # A response is written in pieces (headers, then body): on a kept connection, Nagle's
    # algorithm would hold the body back until the client's delayed ACK (40 ms).
    disable_nagle_algorithm = True

    def make_environ(self) -> WSGIEnvironment:
        environ = super().make_environ()
        self._body: LimitedStream | None = None
        self._keep = False
        self._failed = False
        length = environ.get("CONTENT_LENGTH") or "0"
        if not environ.get("wsgi.input_terminated") and length.isdigit():
            self._body = LimitedStream(cast("IO[bytes]", self.rfile), int(length))
            environ["wsgi.input"] = self._body
        environ[_HANDLER_KEY] = self
        return environ

    def send_header(self, keyword: str, value: str) -> None:
        # Werkzeug sends "Connection: close" with every response; leave it out when the
        # connection can be kept (http.server then reads the next request from it).
        if keyword.lower() == "connection" and value.lower() == "close" and self._keepable():
            self._keep = True
            return
        super().send_header(keyword, value)

    def _keepable(self) -> bool:
        body = getattr(self, "_body", None)
        return (
            body is not None
            and not self._failed
            and not self.close_connection  # the client asked to close, or HTTP/1.0
            and body.limit - body.tell() <= _MAX_DISCARD
        )

    def finish_response(self) -> None:
        """The application is done: read what it left of the body, so that the next
        request starts where this one ends."""
        if not self._keep or self._body is None:
            return
        while self._body.read(64 * 1024):
            pass
        self._saved_rfile: Any = self.rfile
        self.rfile = cast("Any", _Discarded())

    def restore(self) -> None:
        saved = getattr(self, "_saved_rfile", None)
        if saved is not None:
            self.rfile = saved
            self._saved_rfile = None

    def fail(self) -> None:
        self._failed = True
        self.close_connection = True

    def connection_dropped(
        self, error: BaseException, environ: WSGIEnvironment | None = None
    ) -> None:
        # Also reached when the app raises DroppedResponse: close the socket without a word,
        # as a crashed proxy would; the client sees the connection end with no response.
        self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors ``http.server`` answers itself (a request line or header too long, too many
        headers, a malformed request line): in the API's error shape, not an HTML page."""
        self.close_connection = True
        text = message or self.responses.get(code, ("Bad request",))[0]
        body = json.dumps(
            {
                "object": "error",
                "message": text,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        ).encode()
        try:
            self.send_response(code, text)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD" and code >= 200 and code not in (204, 304):
                self.wfile.write(body)
        except OSError:  # the client went away
            pass

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silent: the emulator keeps its own request log, and benchmarks send thousands."""


class _Finishing:
    """The application's response body, telling the handler when it has been sent."""

    def __init__(self, chunks: Iterable[bytes], handler: _Handler) -> None:
        self._chunks = chunks
        self._handler = handler

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except BaseException:
            self._handler.fail()
            raise
        self._handler.finish_response()

    def close(self) -> None:
        self._handler.restore()
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class _KeepAlive:
    """WSGI middleware between Werkzeug's handler and the emulator (see the module doc)."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        handler: _Handler = environ.pop(_HANDLER_KEY)
        try:
            chunks = self.app(environ, start_response)
        except BaseException:
            handler.fail()
            raise
        return _Finishing(chunks, handler)


def make_emulator_server(app: WSGIApplication, host: str, port: int) -> BaseWSGIServer:
    """Bind (``port=0``: any free port) and return the server, not yet serving."""
    return make_server(host, port, _KeepAlive(app), threaded=True, request_handler=_Handler)


def server_url(server: BaseWSGIServer) -> str:
    address = server.server_address[0]
    host = address.decode() if isinstance(address, bytes) else str(address)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{server.server_port}"


def serve(
    emulator: WSGIApplication,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    on_ready: Callable[[str], Any] | None = None,
) -> None:
    """Serve until interrupted (KeyboardInterrupt ends it cleanly); ``on_ready(url)`` first."""
    server = make_emulator_server(emulator, host, port)
    try:
        if on_ready is not None:
            on_ready(server_url(server))
        server.serve_forever()
    except KeyboardInterrupt:  # also when it lands before the loop started
        pass
    finally:
        server.server_close()


class ServedEmulator:
    """The emulator on a real socket in a background thread: ``with ServedEmulator(e) as s:``."""

    def __init__(self, emulator: WSGIApplication, host: str = "127.0.0.1", port: int = 0) -> None:
        self._server = make_emulator_server(emulator, host, port)
        self.url = server_url(self._server)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> ServedEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()
