"""Serving the emulator over HTTP with Werkzeug's threaded server (a thread per request)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication, WSGIEnvironment


class _Handler(WSGIRequestHandler):
    def connection_dropped(
        self, error: BaseException, environ: WSGIEnvironment | None = None
    ) -> None:
        # Also reached when the app raises DroppedResponse: close the socket without a word,
        # as a crashed proxy would; the client sees the connection end with no response.
        self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Silent: the emulator keeps its own request log, and benchmarks send thousands."""


def make_emulator_server(app: WSGIApplication, host: str, port: int) -> BaseWSGIServer:
    """Bind (``port=0``: any free port) and return the server, not yet serving."""
    return make_server(host, port, app, threaded=True, request_handler=_Handler)


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
