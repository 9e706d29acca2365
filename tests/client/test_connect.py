"""Server resolution and the API-key policy (DESIGN.md section 5)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from scripted_transport import JOB, Scripted, reply

from reconciler.client import MistralClient
from reconciler.connect import (
    LOCAL_TOKEN,
    LOOPBACK_PLACEHOLDER_TOKEN,
    ServerPolicyError,
    is_loopback_host,
    make_client,
    resolve_server,
)
from reconciler.errors import ReconcilerError

KEY = "sk-SECRET123"
ENV = {"MISTRAL_API_KEY": KEY}


# -- resolve_server ------------------------------------------------------------------------


def test_default_is_the_real_api() -> None:
    server = resolve_server("", None)
    assert (server.url, server.source, server.trusted, server.loopback) == (
        "https://api.mistral.ai",
        "default",
        True,
        False,
    )


@pytest.mark.parametrize("override", [None, "local"])
def test_local(override: str | None) -> None:
    server = resolve_server("local" if override is None else "https://evil.example", override)
    assert server.is_local
    assert server.source == ("config" if override is None else "override")
    assert not server.trusted  # the key never goes to the in-process emulator


@pytest.mark.parametrize(
    "url",
    [
        "https://api.mistral.ai",
        "https://api.mistral.ai/",
        "https://API.Mistral.AI",
        "https://api.mistral.ai:443",
        "http://127.0.0.1:8765",
        "http://127.0.0.1",
        "https://127.200.3.4:9000",
        "http://[::1]:8765",
        "http://localhost:8765",
        "http://LOCALHOST",
    ],
)
def test_config_urls_that_may_receive_the_key(url: str) -> None:
    server = resolve_server(url, None)
    assert server.trusted
    assert server.source == "config"


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example",
        "http://api.mistral.ai",  # plaintext
        "https://api.mistral.ai:8443",
        "https://api.mistral.ai.evil.example",
        "https://api.mistral.ai@evil.example",
        "https://user:pw@api.mistral.ai",
        "https://evil.example/api.mistral.ai",
        "https://api.mistral.ai/../v1",
        "http://0.0.0.0:8765",
        "http://10.0.0.1:8765",
        "http://128.0.0.1",
        "http://localhost.evil.example",
        "http://[::2]:8765",
        "http://[::ffff:8.8.8.8]",
        # Names that only resolve to loopback (or not) through DNS: never trusted.
        "http://localhost.:8765",
        "http://LOCALHOST.",
        "http://localhost..:8765",
        "http://api.localhost:8765",
        "http://127.0.0.1.nip.io:8765",
        "http://localhost.localdomain",
        "http://127.0.0.1.:8765",
        # Spellings of loopback only some resolvers read so: not a loopback literal.
        "http://127.1:8765",
        "http://0x7f.0.0.1",
        "http://2130706433",
        "http://[::ffff:127.0.0.1]:8765",
        "http://[::1%25eth0]:8765",
    ],
)
def test_config_urls_that_are_refused(url: str) -> None:
    with pytest.raises(ServerPolicyError) as info:
        resolve_server(url, None)
    assert str(info.value) == (
        f"server {url} in reconciler.yaml is not api.mistral.ai or loopback; "
        "pass it with --server or MISTRAL_SERVER_URL to trust it"
    )


def test_an_override_is_trusted_and_wins_over_the_config() -> None:
    server = resolve_server("https://evil.example", "https://batch.internal.example:8443")
    assert (server.url, server.source, server.trusted, server.loopback) == (
        "https://batch.internal.example:8443",
        "override",
        True,
        False,
    )


@pytest.mark.parametrize("url", ["ftp://api.mistral.ai", "api.mistral.ai", "http://", "local:"])
def test_malformed_servers(url: str) -> None:
    with pytest.raises(ServerPolicyError, match="must be 'local' or an http"):
        resolve_server(url, None)
    with pytest.raises(ServerPolicyError, match="given with --server"):
        resolve_server("local", url)


def test_query_strings_are_refused() -> None:
    with pytest.raises(ServerPolicyError, match="query"):
        resolve_server("http://127.0.0.1:8765/?x=1", None)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.255.254", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0:0:0:0:0:0:0:1", True),
        ("localhost.", False),
        ("localhost..", False),
        ("a.localhost", False),
        ("localhost.example", False),
        ("127.0.0.1.", False),
        ("127.1", False),
        ("::ffff:127.0.0.1", False),
        ("::1%eth0", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0", False),
        ("::", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


# -- make_client: which token goes where ---------------------------------------------------


def _sent_token(transport: Scripted) -> str:
    return str(transport.requests[-1].headers.get("authorization"))


def test_real_api_gets_the_key(tmp_path: Path) -> None:
    transport = Scripted(reply(200, JOB))
    client = make_client(
        tmp_path, "https://api.mistral.ai", override=None, env=ENV, transport=transport
    )
    client.get_job("job-1")
    assert str(transport.requests[0].url) == "https://api.mistral.ai/v1/batch/jobs/job-1"
    assert _sent_token(transport) == f"Bearer {KEY}"


@pytest.mark.parametrize("config", ["https://api.mistral.ai", ""])
def test_real_api_without_a_key_fails_before_any_request(tmp_path: Path, config: str) -> None:
    transport = Scripted()
    with pytest.raises(ServerPolicyError, match="MISTRAL_API_KEY is not set"):
        make_client(tmp_path, config, override=None, env={}, transport=transport)
    with pytest.raises(ServerPolicyError, match="MISTRAL_API_KEY is not set"):
        make_client(tmp_path, config, override=None, env={"MISTRAL_API_KEY": "  "})
    assert transport.requests == []


def test_untrusted_config_server_fails_before_any_request_even_with_a_key(tmp_path: Path) -> None:
    transport = Scripted()
    with pytest.raises(ServerPolicyError, match=r"not api\.mistral\.ai or loopback"):
        make_client(
            tmp_path, "https://collector.evil.example", override=None, env=ENV, transport=transport
        )
    assert transport.requests == []


def test_override_server_gets_the_key(tmp_path: Path) -> None:
    transport = Scripted(reply(200, JOB))
    client = make_client(
        tmp_path,
        "https://collector.evil.example",  # ignored: the override names the server
        override="https://proxy.corp.example",
        env=ENV,
        transport=transport,
    )
    client.get_job("job-1")
    assert transport.requests[0].url.host == "proxy.corp.example"
    assert _sent_token(transport) == f"Bearer {KEY}"


def test_override_server_needs_a_key_unless_loopback(tmp_path: Path) -> None:
    with pytest.raises(ServerPolicyError, match=r"https://proxy\.corp\.example needs an API key"):
        make_client(tmp_path, "local", override="https://proxy.corp.example", env={})


@pytest.mark.parametrize("override", [None, "http://127.0.0.1:8765"])
def test_loopback_without_key_gets_a_placeholder(tmp_path: Path, override: str | None) -> None:
    transport = Scripted(reply(200, JOB))
    client = make_client(
        tmp_path, "http://localhost:8765", override=override, env={}, transport=transport
    )
    client.get_job("job-1")
    assert _sent_token(transport) == f"Bearer {LOOPBACK_PLACEHOLDER_TOKEN}"


def test_loopback_with_a_key_gets_the_key(tmp_path: Path) -> None:
    transport = Scripted(reply(200, JOB))
    client = make_client(tmp_path, "http://[::1]:8765", override=None, env=ENV, transport=transport)
    client.get_job("job-1")
    assert _sent_token(transport) == f"Bearer {KEY}"


def test_debug_log_is_wired_and_redacted(tmp_path: Path) -> None:
    log: list[str] = []
    transport = Scripted(reply(200, JOB))
    client = make_client(
        tmp_path,
        "https://api.mistral.ai",
        override=None,
        env=ENV,
        debug_log=log.append,
        transport=transport,
    )
    client.get_job("job-1")
    assert any("authorization: Bearer ***" in line for line in log)
    assert KEY not in "\n".join(log)


def test_local_never_sees_the_key(tmp_path: Path) -> None:
    client = make_client(tmp_path, "local", override=None, env=ENV)
    seen: list[str] = []
    original = client._http._transport  # the in-process emulator

    class Spy(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.headers["authorization"])
            return original.handle_request(request)

    client._http._transport = Spy()
    assert client.list_jobs()["data"] == []
    assert seen == [f"Bearer {LOCAL_TOKEN}"]
    assert (tmp_path / ".reconciler" / "emulator.sqlite3").exists()
    client.close()


# -- the key is checked before any request, and never shown ---------------------------------

BAD_KEYS = {
    "crlf": "sk-SECRET123\r\nX-Injected: 1",
    "lf inside": "sk-SECRET\n123",
    "trailing newline": "sk-SECRET123\n",
    "leading space": " sk-SECRET123",
    "space inside": "sk-SECRET 123",
    "tab": "sk-SECRET\t123",
    "escape": "sk-SECRET\x1b[2J123",
    "nul": "sk-SECRET\x00123",
    "del": "sk-SECRET\x7f123",
    "c1": "sk-SECRET\x9b123",
    "latin-1": "sk-SECRET\xe9123",
    "non-latin-1": "sk-SECRET\u2603123",
}


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
@pytest.mark.parametrize("server", ["https://api.mistral.ai", "http://127.0.0.1:8765"])
def test_a_key_that_is_no_header_value_is_refused_before_any_request(
    tmp_path: Path, key: str, server: str
) -> None:
    transport = Scripted(reply(200, JOB))
    with pytest.raises(ReconcilerError) as info:
        client = make_client(
            tmp_path, server, override=None, env={"MISTRAL_API_KEY": key}, transport=transport
        )
        client.get_job("job-1")
    assert transport.requests == []
    message = str(info.value)
    assert message.startswith("MISTRAL_API_KEY cannot be sent as an API key: it ")
    assert "its value is not shown" in message
    for part in ("SECRET", "sk-S", "123", "X-Injected"):
        assert part not in message


def test_the_client_itself_refuses_such_a_key() -> None:
    with pytest.raises(ReconcilerError, match="cannot be sent as an API key") as info:
        MistralClient("https://api.mistral.ai", "sk-SECRET123\r\n", transport=Scripted())
    assert "SECRET" not in str(info.value)
