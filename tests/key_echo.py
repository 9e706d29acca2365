"""A hostile (or buggy) API server on 127.0.0.1 that echoes the bearer token back.

Every request is answered with ``status`` and a body (plain text, or a JSON ``message``)
of ``pad`` dots followed by the token it was sent, and the token in an ``X-Echo`` header:
so a message cut to length before redaction shows a prefix of the key, and the debug log
shows whatever headers the server sent. It records the requests it got (method, path,
Authorization).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class KeyEcho:
    status: int = 403
    pad: int = 280
    plain: bool = True  # a text body (cut to length in messages), else JSON "message"
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def start(self) -> KeyEcho:
        echo = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self) -> None:
                auth = self.headers.get("Authorization", "")
                echo.seen.append((self.command, self.path, auth))
                token = auth.removeprefix("Bearer ")
                text = "." * echo.pad + token
                body = text.encode() if echo.plain else json.dumps({"message": text}).encode()
                self.send_response(echo.status)
                self.send_header("Content-Type", "text/plain" if echo.plain else "application/json")
                self.send_header("X-Echo", token)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = _answer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def windows(key: str, size: int = 8) -> list[str]:
    """Every ``size`` consecutive characters of ``key``: none may appear in any output."""
    return [key[i : i + size] for i in range(len(key) - size + 1)]


def leaked(key: str, *texts: str) -> list[str]:
    return sorted({w for w in windows(key) for text in texts if w in text})
