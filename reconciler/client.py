"""The Mistral Batch Jobs and Files API client: one ``httpx.Client``, retries, error mapping.

Every request goes through :meth:`MistralClient._call`, which decides per operation what a
failure means:

    idempotent (GET, list, cancel, delete)
        429 / 500 / 502 / 503 / 504 and transport errors (connect, timeout, dropped
        connection) are retried with capped exponential backoff and full jitter;
        ``Retry-After`` (seconds or an HTTP date) replaces the backoff when present.
    rate limited (429, every operation)
        the server did nothing and says when to come back: waited out up to
        ``rate_limited_retries`` times on top of ``max_attempts``, so that a bulk apply is
        paced by a rate limit instead of failing the calls that lost the race; and every
        other thread of the client holds its requests until then too (they would only be
        refused as well).
    writes (create, upload)
        retried only when the server certainly did not act: 429, or a connection that
        was never established.  Anything else that leaves the outcome open (a timeout
        after sending, a dropped connection, a 5xx) raises ``UnknownOutcome``: the
        executor then looks the create up by its ``reconciler.create-id`` tag.

Every failure ends as one :class:`~reconciler.errors.ApiError` carrying the status, the
request as "METHOD /path" and a human message. The API key is checked before anything is
sent (:func:`reconciler.secrets.check_key`: a key that is not a valid header value is
refused without showing it) and lives only in the ``httpx.Client``'s default headers;
messages, the debug log and ``repr`` pass through :class:`reconciler.secrets.Redactor`
(the whole key and any 8 consecutive characters of it), always before a server's words are
cut to length, so it never appears in any output even when a server echoes it back. A
server's words are escaped for the terminal (:mod:`reconciler.render.safe`) and kept on one
line before they become part of a message.

A deadline (:meth:`MistralClient.set_deadline`: the command's ``--timeout``) bounds every
wait: a retry or a rate-limit pause that would end past it, or a request started after it,
raises an ``ApiError`` saying what the API kept answering, instead of waiting for as long as
the server asks.

Query strings are encoded exactly as the official ``mistralai`` SDK 3.7 encodes them
(``metadata`` exploded into one parameter per key, ``status`` repeated, ``created_after``
ISO 8601, ``page``/``page_size``/``created_by_me``/``order_by`` always sent), because what
the SDK sends is what the server is known to accept.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from reconciler import __version__, api, durations
from reconciler.errors import ApiError, UnknownOutcome
from reconciler.render.safe import terminal
from reconciler.secrets import Redactor, check_key

DEFAULT_USER_AGENT = f"reconciler/{__version__}"
# The executor runs up to --parallelism actions at once; 32 is the most it allows.
MAX_CONNECTIONS = 32

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Transport errors raised before a single byte of the request left: a write that failed
# this way certainly did not happen, so even a create may be sent again.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# Transport errors worth retrying for idempotent requests.
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
# The start of a server's error body shown in a message (after redaction and escaping).
SERVER_TEXT_MAX = 300
_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: ``max_attempts`` counts the first try too (1 = never retry)."""

    max_attempts: int = 5
    base_delay: float = 0.5  # seconds; the n-th retry waits up to base * 2**(n-1)
    max_delay: float = 8.0  # cap of one backoff wait
    max_retry_after: float = 60.0  # cap of one server-requested wait (Retry-After)
    rate_limited_retries: int = 50  # 429s one call waits out before they count as attempts

    def backoff(self, retry: int, rand: Callable[[], float]) -> float:
        """Full jitter: uniform in [0, min(max_delay, base * 2**(retry-1))] for retry >= 1."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** max(0, retry - 1))
        return max(0.0, min(1.0, rand())) * ceiling


NO_RETRY = RetryPolicy(max_attempts=1, rate_limited_retries=0)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT; be lenient with ones that omit it
        return None
    return max(0.0, when.timestamp() - now)


def sdk_datetime(value: datetime | str) -> str:
    """A ``created_after`` value as the SDK writes it (ISO 8601, ``Z`` for UTC)."""
    if isinstance(value, str):
        return value
    return value.isoformat().replace("+00:00", "Z")


class MistralClient:
    """Thin, thread-safe client of the Batch Jobs and Files API returning plain dicts."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy = RetryPolicy(),
        debug_log: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = DEFAULT_USER_AGENT,
        rand: Callable[[], float] = random.random,
        now: Callable[[], float] = time.time,
        redact_key: bool = True,
    ) -> None:
        """``redact_key=False`` for a token that is no secret (the local emulator's fixed
        token, the loopback placeholder): redacting it would only mangle ordinary words."""
        self._base_url = httpx.URL(base_url.rstrip("/"))
        self._key = api_key or ""
        if self._key:
            check_key(self._key, name="the API key")  # before it reaches any header
        self._redactor = Redactor(self._key if redact_key else None)
        self._timeout = timeout
        self._retry = retry
        self._debug_log = debug_log
        self._sleep = sleep
        self._rand = rand
        self._now = now
        self._lock = threading.Lock()
        # Set by the thread that waits out a 429: until then, the others hold their requests.
        self._paused_until = 0.0
        self._paused_by: int | None = None
        # The command's time limit (set_deadline): an instant of ``now``, its length, and
        # how the user set it, for the message when it is reached.
        self._deadline: float | None = None
        self._budget = 0.0
        self._budget_label = ""
        self.stats: Counter[str] = Counter()  # logical calls per method
        self.attempts: Counter[str] = Counter()  # HTTP requests per method, retries included
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        self._http = httpx.Client(
            base_url=self._base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout),
            transport=transport,
            limits=httpx.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
            ),
            follow_redirects=False,  # a redirect must not carry the key to another host
        )

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return str(self._base_url)

    @property
    def host(self) -> str:
        port = self._base_url.port
        return f"{self._base_url.host}:{port}" if port else self._base_url.host

    def __repr__(self) -> str:
        return f"MistralClient({self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> MistralClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def set_deadline(self, seconds: float | None, *, label: str = "") -> None:
        """Give up on any wait that would end more than ``seconds`` from now (None: never).

        ``label`` says where the limit came from (``--timeout 10m``), for the message."""
        if seconds is None:
            self._deadline = None
            return
        self._deadline = self._now() + seconds
        self._budget = seconds
        self._budget_label = label or f"--timeout {durations.show(seconds)}"

    def reset_stats(self) -> None:
        with self._lock:
            self.stats.clear()
            self.attempts.clear()

    # -- batch jobs ------------------------------------------------------------------------

    def list_jobs(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        status: Sequence[str] | None = None,
        model: str | None = None,
        agent_id: str | None = None,
        created_after: datetime | str | None = None,
        created_by_me: bool = False,
        order_by: str = "created",
        page: int = 0,
        page_size: int = api.PAGE_SIZE,
    ) -> dict[str, Any]:
        """One page of ``GET /v1/batch/jobs``; parameters in the SDK's order and encoding."""
        params: list[tuple[str, str]] = [("page", str(page)), ("page_size", str(page_size))]
        if model is not None:
            params.append(("model", model))
        if agent_id is not None:
            params.append(("agent_id", agent_id))
        for key, value in (metadata or {}).items():
            params.append((str(key), str(value)))
        if created_after is not None:
            params.append(("created_after", sdk_datetime(created_after)))
        params.append(("created_by_me", "true" if created_by_me else "false"))
        for one in status or ():
            params.append(("status", str(one)))
        params.append(("order_by", order_by))
        return self._json("list_jobs", "GET", api.JOBS_PATH, params=params)

    def iter_job_pages(
        self,
        *,
        metadata: Mapping[str, str] | None = None,
        status: Sequence[str] | None = None,
        model: str | None = None,
        agent_id: str | None = None,
        created_after: datetime | str | None = None,
        created_by_me: bool = False,
        order_by: str = "created",
        page_size: int = api.PAGE_SIZE,
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of the listing, until a short page or ``total`` says it is the last."""

        def fetch(page: int) -> dict[str, Any]:
            return self.list_jobs(
                metadata=metadata,
                status=status,
                model=model,
                agent_id=agent_id,
                created_after=created_after,
                created_by_me=created_by_me,
                order_by=order_by,
                page=page,
                page_size=page_size,
            )

        return _pages(fetch, page_size, "GET " + api.JOBS_PATH)

    def create_job(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/batch/jobs``; never re-sent when its outcome is unknown."""
        return self._json("create_job", "POST", api.JOBS_PATH, json=dict(body), write=True)

    def get_job(self, job_id: str, *, inline: bool = False) -> dict[str, Any]:
        params = [("inline", "true")] if inline else None
        return self._json(
            "get_job", "GET", f"{api.JOBS_PATH}/{_seg(job_id)}", params=params, what=f"job {job_id}"
        )

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._json(
            "cancel_job", "POST", f"{api.JOBS_PATH}/{_seg(job_id)}/cancel", what=f"job {job_id}"
        )

    def delete_job(self, job_id: str) -> dict[str, Any]:
        return self._json(
            "delete_job",
            "DELETE",
            f"{api.JOBS_PATH}/{_seg(job_id)}",
            what=f"job {job_id}",
            gone={"id": job_id, "object": "batch", "deleted": True},
        )

    # -- models ----------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        """``GET /v1/models`` (the SDK's ``models.list``): the model cards the key may use,
        each with its ``id`` and ``aliases``. Read once per plan, to check model names."""
        body = self._json("list_models", "GET", api.MODELS_PATH)
        data = body.get("data")
        if not isinstance(data, list):
            raise ApiError(
                "the model list has no 'data' array",
                status=200,
                request=f"GET {api.MODELS_PATH}",
            )
        return [card for card in data if isinstance(card, dict)]

    # -- files -----------------------------------------------------------------------------

    def upload_file(
        self,
        path: Path,
        *,
        filename: str,
        purpose: str = "batch",
        visibility: str = "workspace",
    ) -> dict[str, Any]:
        """``POST /v1/files`` as multipart, streamed from disk in 64 KiB chunks.

        Like a create, an upload whose outcome is unknown raises ``UnknownOutcome``;
        content-addressed file names let the caller find what did arrive.
        """
        with Path(path).open("rb") as fh:
            # httpx seeks the file back to 0 each time it renders the body, so a retry
            # after a 429 sends the whole file again.
            return self._json(
                "upload_file",
                "POST",
                api.FILES_PATH,
                data={"visibility": visibility, "purpose": purpose},
                files={"file": (filename, fh, "application/octet-stream")},
                write=True,
            )

    def list_files(
        self,
        *,
        search: str | None = None,
        purpose: str | None = None,
        page: int = 0,
        page_size: int = 100,
    ) -> dict[str, Any]:
        params: list[tuple[str, str]] = [
            ("page", str(page)),
            ("page_size", str(page_size)),
            ("include_total", "true"),
        ]
        if search is not None:
            params.append(("search", search))
        if purpose is not None:
            params.append(("purpose", purpose))
        return self._json("list_files", "GET", api.FILES_PATH, params=params)

    def iter_file_pages(
        self, *, search: str | None = None, purpose: str | None = None, page_size: int = 100
    ) -> Iterator[list[dict[str, Any]]]:
        def fetch(page: int) -> dict[str, Any]:
            return self.list_files(search=search, purpose=purpose, page=page, page_size=page_size)

        return _pages(fetch, page_size, "GET " + api.FILES_PATH)

    def get_file(self, file_id: str) -> dict[str, Any]:
        return self._json(
            "get_file", "GET", f"{api.FILES_PATH}/{_seg(file_id)}", what=f"file {file_id}"
        )

    def delete_file(self, file_id: str) -> dict[str, Any]:
        return self._json(
            "delete_file",
            "DELETE",
            f"{api.FILES_PATH}/{_seg(file_id)}",
            what=f"file {file_id}",
            gone={"id": file_id, "object": "file", "deleted": True},
        )

    def download_file(self, file_id: str, dest: BinaryIO, *, chunk_size: int = 1 << 16) -> int:
        """Stream ``GET /v1/files/{id}/content`` into ``dest``; returns the bytes written.

        A retry after a failure mid-body rewinds ``dest`` when it can; when it cannot,
        the error is raised rather than writing a corrupt file.
        """
        path = f"{api.FILES_PATH}/{_seg(file_id)}/content"
        request = f"GET {path}"
        start: int | None
        try:
            start = dest.tell() if dest.seekable() else None
        except (OSError, ValueError):
            start = None
        self._count("download_file")
        attempt = 0
        while True:
            attempt += 1
            written = 0
            try:
                with self._stream(
                    "download_file", "GET", path, {"Accept": "application/octet-stream"}
                ) as response:
                    if 300 <= response.status_code < 400:
                        raise self._redirect_error(response, request)
                    if response.status_code >= 400:
                        response.read()
                        delay = self._retry_delay(response, attempt)
                        if delay is None:
                            raise self._status_error(response, request, f"file {file_id}", attempt)
                        self._wait(
                            request, delay, f"HTTP {response.status_code}", response=response
                        )
                        continue
                    for chunk in response.iter_bytes(chunk_size):
                        dest.write(chunk)
                        written += len(chunk)
                    return written
            except _TRANSIENT as exc:
                if written and start is None:
                    raise self._transport_error(exc, request, attempt) from self._cause(exc)
                if attempt >= self._retry.max_attempts:
                    raise self._transport_error(exc, request, attempt) from self._cause(exc)
                if start is not None:
                    dest.seek(start)
                    dest.truncate()
                self._wait(request, self._backoff(attempt), type(exc).__name__, exc=exc)
            except httpx.TransportError as exc:
                raise self._transport_error(exc, request, attempt) from self._cause(exc)

    # -- the one request loop --------------------------------------------------------------

    def _count(self, op: str) -> None:
        with self._lock:
            self.stats[op] += 1

    def _json(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        files: Mapping[str, Any] | None = None,
        what: str | None = None,
        write: bool = False,
        gone: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = self._call(
            op,
            method,
            path,
            params=params,
            json=json,
            data=data,
            files=files,
            what=what,
            write=write,
            gone=gone is not None,
        )
        if response is None:  # a retried delete found the thing already gone
            assert gone is not None
            return dict(gone)
        try:
            body = response.json()
        except ValueError:
            raise ApiError(
                "the API answered with a body that is not JSON",
                status=response.status_code,
                request=f"{method} {path}",
            ) from None
        if not isinstance(body, dict):
            raise ApiError(
                "the API answered with JSON that is not an object",
                status=response.status_code,
                request=f"{method} {path}",
            )
        return body

    def _call(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None,
        json: Any,
        data: Mapping[str, str] | None,
        files: Mapping[str, Any] | None,
        what: str | None,
        write: bool,
        gone: bool,
    ) -> httpx.Response | None:
        """Send with the retry policy; the successful response, or None when ``gone``
        and a retry after an uncertain attempt found the resource already removed."""
        request = f"{method} {path}"
        self._count(op)
        # Whether an earlier attempt may have reached the server and acted: then a 404 on a
        # retried delete means that attempt did the work.
        maybe_applied = False
        attempt = 0
        paced = 0  # of the attempts, 429s waited out without counting against max_attempts
        while True:
            attempt += 1
            built = self._http.build_request(
                method,
                path,
                params=tuple(params) if params else None,
                json=json,
                data=data,
                files=files,
                timeout=self._read_timeout() if not write else httpx.USE_CLIENT_DEFAULT,
            )
            try:
                response = self._send(op, built)
            except _NOT_SENT as exc:
                if attempt >= self._retry.max_attempts:
                    raise self._transport_error(exc, request, attempt) from self._cause(exc)
                self._wait(request, self._backoff(attempt), type(exc).__name__, exc=exc)
                continue
            except _TRANSIENT as exc:
                if write:
                    raise UnknownOutcome(
                        self._shown(
                            f"no answer from {self.host} ({_describe(exc)}): the request "
                            "may or may not have taken effect"
                        ),
                        request=request,
                    ) from self._cause(exc)
                maybe_applied = True
                if attempt >= self._retry.max_attempts:
                    raise self._transport_error(exc, request, attempt) from self._cause(exc)
                self._wait(request, self._backoff(attempt), type(exc).__name__, exc=exc)
                continue
            except httpx.TransportError as exc:  # bad URL scheme, proxy trouble: not transient
                raise self._transport_error(exc, request, attempt) from self._cause(exc)

            status = response.status_code
            if status < 300:
                return response
            if status < 400:
                raise self._redirect_error(response, request)
            if gone and status == 404 and maybe_applied:
                # An earlier attempt whose answer was lost did the delete.
                return None
            if write and status >= 500:
                raise UnknownOutcome(
                    self._redact(
                        f"server error: {self._server_message(response)}; the request may "
                        "or may not have taken effect"
                    ),
                    status=status,
                    request=request,
                )
            if status == 429 and paced < self._retry.rate_limited_retries:
                paced += 1
                self._pause(request, self._server_delay(response, paced), response)
                continue
            delay = self._retry_delay(response, attempt - paced)
            if delay is None:
                raise self._status_error(response, request, what, attempt)
            maybe_applied = maybe_applied or status >= 500
            self._wait(request, delay, f"HTTP {status}", response=response)

    def _retry_delay(self, response: httpx.Response, attempt: int) -> float | None:
        """How long to wait before retrying this answer; None when it is final."""
        if response.status_code not in RETRY_STATUSES or attempt >= self._retry.max_attempts:
            return None
        return self._server_delay(response, attempt)

    def _server_delay(self, response: httpx.Response, retry: int) -> float:
        """``Retry-After`` when the server says it (capped), else the backoff of ``retry``."""
        asked = parse_retry_after(response.headers.get("Retry-After"), self._now())
        if asked is not None:
            return min(asked, self._retry.max_retry_after)
        return self._backoff(retry)

    def _backoff(self, attempt: int) -> float:
        return self._retry.backoff(attempt, self._rand)

    def _wait(
        self,
        request: str,
        delay: float,
        why: str,
        *,
        response: httpx.Response | None = None,
        exc: Exception | None = None,
    ) -> None:
        self._within_deadline(request, delay, response=response, exc=exc)
        self._log(f"retry {request} in {delay:.2f}s after {why}")
        self._sleep(delay)

    def _pause(self, request: str, delay: float, response: httpx.Response) -> None:
        """Wait out a 429, and have every other thread hold its requests until then too."""
        self._within_deadline(request, delay, response=response)
        with self._lock:
            self._paused_until = self._now() + delay
            self._paused_by = threading.get_ident()
        self._wait(request, delay, "HTTP 429", response=response)

    def _hold(self, request: str) -> None:
        """Before a request: while another thread waits out a 429, wait with it. The
        server is refusing everyone; a request sent now would only be refused as well."""
        with self._lock:
            if self._paused_by == threading.get_ident():
                return  # this thread's own pause is over: it has just waited it out
            remaining = self._paused_until - self._now()
        if remaining > 0:
            wait = min(remaining, self._retry.max_retry_after)
            self._within_deadline(request, wait, held=True)
            self._log(f"holding requests {remaining:.2f}s: the API is rate limiting")
            self._sleep(wait)

    # -- the command's time limit ----------------------------------------------------------

    def _within_deadline(
        self,
        request: str,
        delay: float,
        *,
        response: httpx.Response | None = None,
        exc: Exception | None = None,
        held: bool = False,
    ) -> None:
        """Raise when waiting ``delay`` seconds (0: sending now) would pass the deadline."""
        if self._deadline is None:
            return
        left = self._deadline - self._now()
        if delay <= left and left > 0:
            return
        spent = durations.show(max(0.0, self._budget - left))
        if response is not None and response.status_code == 429:
            why = "the API kept answering 429 (rate limited)"
            asked = parse_retry_after(response.headers.get("Retry-After"), self._now())
            if asked is not None:
                why += f" and asked to wait {durations.show(asked)} more"
        elif response is not None:
            why = f"the API kept answering {response.status_code}"
        elif exc is not None:
            why = f"no answer from {self.host} ({_describe(exc)})"
        elif held:
            why = "the API is rate limiting every request (429)"
        else:
            why = "the time limit has passed"
        raise ApiError(
            terminal(
                self._redact(
                    f"gave up after {spent}: {why}; the command's time limit is "
                    f"{self._budget_label} (set --timeout or RECONCILER_TIMEOUT to change it)"
                )
            ),
            status=None if response is None else response.status_code,
            request=request,
        )

    def _read_timeout(self) -> httpx.Timeout | Any:
        """A GET never waits for an answer past the deadline (writes keep their timeout:
        the executor reasons about a slow create from it)."""
        if self._deadline is None:
            return httpx.USE_CLIENT_DEFAULT
        left = self._deadline - self._now()
        if left >= self._timeout:
            return httpx.USE_CLIENT_DEFAULT
        return httpx.Timeout(max(0.5, left))

    def _send(self, op: str, request: httpx.Request) -> httpx.Response:
        request_line = f"{request.method} {request.url.path}"
        self._hold(request_line)
        self._within_deadline(request_line, 0.0)
        with self._lock:
            self.attempts[op] += 1
        self._log_request(request)
        started = time.monotonic()
        try:
            response = self._http.send(request)
            response.read()
        except httpx.TransportError as exc:
            self._log_failure(request, started, exc)
            raise
        self._log_response(request, response, started)
        return response

    def _stream(
        self, op: str, method: str, path: str, headers: Mapping[str, str]
    ) -> _StreamedResponse:
        with self._lock:
            self.attempts[op] += 1
        request = self._http.build_request(method, path, headers=dict(headers))
        return _StreamedResponse(self, request)

    # -- errors ----------------------------------------------------------------------------

    def _status_error(
        self, response: httpx.Response, request: str, what: str | None, attempts: int
    ) -> ApiError:
        status = response.status_code
        server = self._server_message(response)
        details: list[str] = []
        if status == 401:
            message = "the API rejected the key: check MISTRAL_API_KEY"
        elif status == 403:
            message = f"forbidden: {server}"
        elif status == 404:
            message = f"{what} not found" if what else f"not found: {server}"
        elif status == 422:
            message = "the API rejected the request as invalid"
            details = [self._shown(d) for d in _validation_details(response)]
            if not details:
                message += f": {server}"
        elif status == 429:
            message = f"rate limited by the API (gave up after {_times(attempts)}): {server}"
        elif status >= 500:
            message = f"server error (gave up after {_times(attempts)}): {server}"
        else:
            message = server
        return ApiError(
            self._redact(message),
            status=status,
            request=request,
            details=[self._redact(d) for d in details],
        )

    def _redirect_error(self, response: httpx.Response, request: str) -> ApiError:
        # Never followed: the Authorization header would travel with it.
        where = self._shown(response.headers.get("location") or "(no Location)")
        return ApiError(
            self._redact(f"the API answered with a redirect to {where}; not following it"),
            status=response.status_code,
            request=request,
        )

    def _transport_error(self, exc: httpx.TransportError, request: str, attempts: int) -> ApiError:
        tail = f" (after {_times(attempts)})" if attempts > 1 else ""
        return ApiError(
            self._shown(f"cannot reach {self.host}: {_describe(exc)}{tail}"), request=request
        )

    def _cause(self, exc: httpx.TransportError) -> Exception:
        """A copy of ``exc`` to chain for ``--debug`` tracebacks: same type, message
        redacted, no request attached (the original's request carries the key)."""
        try:
            return type(exc)(self._shown(str(exc)))
        except Exception:  # an exception type with another constructor
            return RuntimeError(self._shown(_describe(exc)))

    def _redact(self, text: str) -> str:
        # A safety net behind the structural redaction of headers, for servers that echo
        # the key back (see reconciler.secrets for the rule).
        return self._redactor.redact(text)

    def _shown(self, text: str) -> str:
        """Text from a server or an exception, as it may appear in a message: the key
        redacted, then escaped onto one line (redacting first: escaping could hide it)."""
        return self._redact(terminal(self._redact(text)))

    def _server_message(self, response: httpx.Response) -> str:
        """The server's own words, redacted and escaped *before* they are cut to length."""
        text = self._shown(_server_text(response))
        if len(text) > SERVER_TEXT_MAX:
            text = text[:SERVER_TEXT_MAX] + "…"
        return text

    # -- debug log -------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        if self._debug_log is not None:
            # Header values and URLs come from the server: one escaped line each.
            self._debug_log("\n".join(self._shown(part) for part in line.split("\n")))

    def _log_request(self, request: httpx.Request) -> None:
        if self._debug_log is None:
            return
        lines = [f"--> {request.method} {request.url}"]
        lines += [f"    {k}: {v}" for k, v in _redacted_headers(request.headers)]
        self._log("\n".join(lines))

    def _log_response(
        self, request: httpx.Request, response: httpx.Response, started: float
    ) -> None:
        if self._debug_log is None:
            return
        elapsed = (time.monotonic() - started) * 1000
        lines = [f"<-- {response.status_code} {request.method} {request.url} ({elapsed:.1f} ms)"]
        lines += [f"    {k}: {v}" for k, v in _redacted_headers(response.headers)]
        self._log("\n".join(lines))

    def _log_failure(self, request: httpx.Request, started: float, exc: Exception) -> None:
        if self._debug_log is None:
            return
        elapsed = (time.monotonic() - started) * 1000
        self._log(
            f"<-- {type(exc).__name__} {request.method} {request.url} ({elapsed:.1f} ms): {exc}"
        )


class _StreamedResponse:
    """Context manager around ``httpx.Client.send(stream=True)`` with the debug log."""

    def __init__(self, client: MistralClient, request: httpx.Request) -> None:
        self._client = client
        self._request = request
        self._response: httpx.Response | None = None

    def __enter__(self) -> httpx.Response:
        client = self._client
        line = f"{self._request.method} {self._request.url.path}"
        client._hold(line)
        client._within_deadline(line, 0.0)
        client._log_request(self._request)
        started = time.monotonic()
        try:
            self._response = client._http.send(self._request, stream=True)
        except httpx.TransportError as exc:
            client._log_failure(self._request, started, exc)
            raise
        client._log_response(self._request, self._response, started)
        return self._response

    def __exit__(self, *exc_info: object) -> None:
        if self._response is not None:
            self._response.close()


def _pages(
    fetch: Callable[[int], dict[str, Any]], page_size: int, request: str
) -> Iterator[list[dict[str, Any]]]:
    """Page 0, 1, … until a short page, or until ``total`` says nothing is left (which
    saves the extra empty call when the last page is full)."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    page = 0
    previous: list[str] | None = None
    while True:
        body = fetch(page)
        data = body.get("data")
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ApiError("the API answered a listing without a 'data' list", request=request)
        ids = [str(item.get("id")) for item in data]
        if data and ids == previous:
            # A server that ignores ``page`` would otherwise loop forever, or silently
            # hide everything past the first page.
            raise ApiError(
                f"page {page} repeats page {page - 1}: the server ignores pagination",
                request=request,
            )
        previous = ids
        yield data
        total = body.get("total")
        if len(data) < page_size:
            return
        if (
            isinstance(total, int)
            and not isinstance(total, bool)
            and (page + 1) * page_size >= total
        ):
            return
        page += 1


def _seg(value: str) -> str:
    """One path segment: an id can never add a path level or a query string."""
    return urllib.parse.quote(str(value), safe="")


def _describe(exc: Exception) -> str:
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _times(n: int) -> str:
    return f"{n} attempt{'s' if n != 1 else ''}"


def _server_text(response: httpx.Response) -> str:
    """The server's own words: ``message``, a string ``detail``, or the whole body (it is
    cut to length only after redaction, by the caller)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"])
    text = response.text.strip()
    if not text:
        return response.reason_phrase or f"HTTP {response.status_code}"
    return text


def _validation_details(response: httpx.Response) -> list[str]:
    """FastAPI's ``detail`` list as ``loc: msg`` lines (``body`` dropped from ``loc``)."""
    try:
        body = response.json()
    except ValueError:
        return []
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return []
    lines = []
    for item in detail:
        if not isinstance(item, dict):
            continue
        loc = item.get("loc")
        parts = [str(p) for p in loc] if isinstance(loc, list) else []
        if parts and parts[0] in ("body", "query", "path"):
            parts = parts[1:]
        where = ".".join(parts)
        msg = str(item.get("msg") or item.get("message") or "invalid")
        lines.append(f"{where}: {msg}" if where else msg)
    return lines


def _redacted_headers(headers: httpx.Headers) -> list[tuple[str, str]]:
    out = []
    for key, value in headers.multi_items():
        if key.lower() in _SENSITIVE_HEADERS:
            scheme, _, rest = value.partition(" ")
            out.append((key, f"{scheme} ***" if rest else "***"))
        else:
            out.append((key, value))
    return out
