"""Which server to talk to, and whether it may see the API key.

The rules (DESIGN.md section 5), in the order they are applied:

1. The server is ``--server``/``MISTRAL_SERVER_URL`` (the *override*, named outside the
   repository) if given, else ``server:`` from ``reconciler.yaml``, else the real API.
2. ``local`` is the in-process emulator on ``<root>/.reconciler/emulator.sqlite3``. It gets
   a fixed local token: the real ``MISTRAL_API_KEY`` is never sent to it.
3. An override URL is trusted: whoever runs the command chose it.
4. A URL from ``reconciler.yaml`` is trusted only if it is exactly
   ``https://api.mistral.ai`` or a loopback literal: an IPv4 address in 127.0.0.0/8,
   ``::1``, or the name ``localhost`` exactly (not ``localhost.`` with a trailing dot, not
   ``*.localhost`` nor ``localhost.example``: those are names DNS may resolve anywhere).
   Anything else is refused before any request, so a pull request that edits ``server:``
   cannot send the CI's key elsewhere.
5. A non-loopback server needs ``MISTRAL_API_KEY``; without it the command fails before
   any request. A loopback server without a key gets a placeholder token (the emulator
   accepts any non-empty token). A key that is not a valid header value (a line break,
   another control character, a space, a non-ASCII character, whitespace around it) is
   refused before any request, without showing any of it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from reconciler import api
from reconciler.client import MistralClient
from reconciler.errors import ReconcilerError
from reconciler.secrets import KEY_ENV, check_key

LOCAL: Literal["local"] = "local"
# Sent to the in-process emulator instead of any real key.
LOCAL_TOKEN = "reconciler-local-emulator"
# Sent to a loopback server when no key is set (the emulator accepts any non-empty token).
LOOPBACK_PLACEHOLDER_TOKEN = "reconciler-loopback-no-key"
EMULATOR_DB = Path(".reconciler") / "emulator.sqlite3"
# The in-process emulator's base URL: never resolved, no socket is opened.
LOCAL_BASE_URL = "http://emulator.invalid"

_MISTRAL = httpx.URL(api.DEFAULT_SERVER_URL)


class ServerPolicyError(ReconcilerError):
    """The configured server may not be used (untrusted, malformed, or no key for it)."""


@dataclass(frozen=True)
class ResolvedServer:
    """Where requests go and whether the API key may go with them."""

    url: str  # "local", or the URL as given (trailing slash removed)
    source: Literal["config", "override", "default"]
    loopback: bool  # a loopback host (the local emulator counts as one)
    trusted: bool  # may receive MISTRAL_API_KEY

    @property
    def is_local(self) -> bool:
        return self.url == LOCAL


def resolve_server(config_server: str, override: str | None) -> ResolvedServer:
    """Apply rules 1-4: the server to use and whether it is trusted with the key."""
    source: Literal["config", "override", "default"]
    if override is not None and override.strip():
        raw, source = override.strip(), "override"
    elif config_server.strip():
        raw, source = config_server.strip(), "config"
    else:
        raw, source = api.DEFAULT_SERVER_URL, "default"
    if raw == LOCAL:
        return ResolvedServer(url=LOCAL, source=source, loopback=True, trusted=False)

    url = _parse(raw, source)
    loopback = is_loopback_host(url.host)
    if source == "config":
        trusted = loopback or _is_mistral(url)
        if not trusted:
            raise ServerPolicyError(
                f"server {raw} in reconciler.yaml is not api.mistral.ai or loopback; "
                "pass it with --server or MISTRAL_SERVER_URL to trust it"
            )
    else:
        trusted = True
    return ResolvedServer(url=raw.rstrip("/"), source=source, loopback=loopback, trusted=trusted)


def make_client(
    desired_root: Path,
    config_server: str,
    *,
    override: str | None,
    env: Mapping[str, str],
    debug_log: Callable[[str], None] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> MistralClient:
    """A client for the resolved server, with the key only where rule 4 allows it.

    ``transport`` replaces the network for a remote server (tests); ``local`` always
    uses the in-process emulator.
    """
    server = resolve_server(config_server, override)
    if server.is_local:
        db_path = Path(desired_root) / EMULATOR_DB
        db_path.parent.mkdir(parents=True, exist_ok=True)
        return MistralClient(
            LOCAL_BASE_URL,
            LOCAL_TOKEN,
            transport=_local_transport(db_path),
            debug_log=debug_log,
            redact_key=False,
        )

    key = env.get(KEY_ENV) or ""
    secret = bool(key.strip())
    if secret:
        check_key(key)  # before any request, and without showing any of it
    else:
        if not server.loopback:
            raise ServerPolicyError(
                f"{KEY_ENV} is not set: {server.url} needs an API key "
                "(use `server: local` or --server local for the embedded emulator)"
            )
        key = LOOPBACK_PLACEHOLDER_TOKEN
    assert server.trusted  # resolve_server refused every untrusted URL
    return MistralClient(
        server.url, key, transport=transport, debug_log=debug_log, redact_key=secret
    )


def _local_transport(db_path: Path) -> httpx.BaseTransport:
    """The in-process emulator, closed (its SQLite connections) with the client.

    Imported here, not at the top: only ``local`` needs the emulator (and Werkzeug), and
    every other command start-up is faster without them."""
    from reconciler.emulator import Emulator, InProcessTransport  # noqa: PLC0415

    class LocalTransport(InProcessTransport):
        def __init__(self, emulator: Emulator) -> None:
            super().__init__(emulator)
            self.emulator = emulator

        def close(self) -> None:
            self.emulator.close()

    return LocalTransport(Emulator(db_path))


_LOOPBACK_V4 = ipaddress.IPv4Network("127.0.0.0/8")
_LOOPBACK_V6 = ipaddress.IPv6Address("::1")


def is_loopback_host(host: str) -> bool:
    """Exactly an IPv4 literal in 127.0.0.0/8, ``::1`` (bracketed or not) or ``localhost``.

    Never a name that merely resolves there (``localhost.`` is a fully qualified name a
    resolver may send to DNS; ``x.localhost`` or ``localhost.example`` belong to whoever
    runs that DNS), nor a spelling of an address that only some resolvers read as loopback
    (``127.1``, ``0x7f.0.0.1``, ``::ffff:127.0.0.1``, a zone index)."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return address in _LOOPBACK_V4 and str(address) == host
    return address == _LOOPBACK_V6 and address.scope_id is None


def _is_mistral(url: httpx.URL) -> bool:
    """Exactly https://api.mistral.ai (default port, no user info, no path)."""
    return (
        url.scheme == "https"
        and url.host == _MISTRAL.host
        and url.port in (None, 443)
        and not url.userinfo
        and url.path in ("", "/")
        and not url.query
        and not url.fragment
    )


def _parse(raw: str, source: str) -> httpx.URL:
    where = "in reconciler.yaml" if source == "config" else "given with --server"
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ServerPolicyError(f"server {raw} {where} is not a valid URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ServerPolicyError(
            f"server {raw} {where} must be 'local' or an http(s) URL such as "
            f"{api.DEFAULT_SERVER_URL}"
        )
    if url.query or url.fragment:
        raise ServerPolicyError(f"server {raw} {where} must not have a query or fragment")
    return url
