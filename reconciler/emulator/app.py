"""The emulator as a WSGI application: auth, faults, routing, the request log, admin API.

Request flow for the API (``/v1/...``): latency → auth (401) → rate limit / injected
429 / 5xx → handler → request log → response (or, for a "drop" fault on a create, nothing:
the job is committed, then :class:`DroppedResponse` propagates so that the server closes the
connection and the in-process transport raises ``httpx.RemoteProtocolError``).

The admin API under ``/_emulator/`` is neither authenticated, faulted nor logged: it is how
tests steer an emulator running in another process.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import quote

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound, RequestEntityTooLarge
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response
from werkzeug.wsgi import wrap_file

from reconciler.api import FILES_PATH, JOBS_PATH, MODELS_PATH
from reconciler.emulator import catalogue, errors
from reconciler.emulator.clock import Clock, SystemClock
from reconciler.emulator.faults import FaultInjector, Faults
from reconciler.emulator.files import Caller, Files, UploadSink
from reconciler.emulator.jobs import Jobs
from reconciler.emulator.store import LoggedRequest, Settings, Store
from reconciler.emulator.validation import loads, query_bool, query_int

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

ADMIN_PREFIX = "/_emulator/"
MAX_JSON_BODY = 128 * 1024 * 1024  # 10,000 inline requests of a few kB fit easily
MAX_SMALL_BODY = 1024 * 1024  # any other request body (admin bodies, stray bodies on GETs)
SIGNED_URL_MAX_HOURS = 168  # the spec bounds a signed URL's expiry to 1..168 hours
MAX_CLOCK_STEP = 100 * 365 * 86_400.0  # seconds one POST /_emulator/clock may advance
MAX_SPEED = 1_000_000.0
MIN_SPEED = 1e-6
MAX_HOUR_LENGTH = 365 * 86_400.0
MIN_HOUR_LENGTH = 1e-3


class DroppedResponse(ConnectionAbortedError):
    """The request was handled and committed; its response must be dropped unanswered.

    A ConnectionError on purpose: Werkzeug's server treats it as a dropped connection.
    """


def token_owner(token: str) -> str:
    """A user's identity: the token's hash (the token itself is never stored)."""
    return hashlib.sha256(token.encode()).hexdigest()


class _Request(Request):
    """A request whose uploaded files stream straight into the emulator's blob folder."""

    sinks: list[UploadSink]
    new_sink: Any  # set per request: () -> UploadSink

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        sink: UploadSink = self.new_sink()
        self.sinks.append(sink)
        return sink.as_io()


_API = Map(
    [
        Rule(JOBS_PATH, methods=["GET"], endpoint="list_jobs"),
        Rule(JOBS_PATH, methods=["POST"], endpoint="create_job"),
        Rule(f"{JOBS_PATH}/<job_id>", methods=["GET"], endpoint="get_job"),
        Rule(f"{JOBS_PATH}/<job_id>", methods=["DELETE"], endpoint="delete_job"),
        Rule(f"{JOBS_PATH}/<job_id>/cancel", methods=["POST"], endpoint="cancel_job"),
        Rule(FILES_PATH, methods=["GET"], endpoint="list_files"),
        Rule(FILES_PATH, methods=["POST"], endpoint="upload_file"),
        Rule(f"{FILES_PATH}/<file_id>", methods=["GET"], endpoint="get_file"),
        Rule(f"{FILES_PATH}/<file_id>", methods=["DELETE"], endpoint="delete_file"),
        Rule(f"{FILES_PATH}/<file_id>/content", methods=["GET"], endpoint="download_file"),
        Rule(f"{FILES_PATH}/<file_id>/url", methods=["GET"], endpoint="signed_url"),
        Rule(MODELS_PATH, methods=["GET"], endpoint="list_models"),
        Rule(f"{MODELS_PATH}/<path:model_id>", methods=["GET"], endpoint="get_model"),
        Rule(f"{MODELS_PATH}/<path:model_id>", methods=["DELETE"], endpoint="delete_model"),
        Rule(f"{ADMIN_PREFIX}faults", methods=["GET", "PUT"], endpoint="admin_faults"),
        Rule(f"{ADMIN_PREFIX}requests", methods=["GET", "DELETE"], endpoint="admin_requests"),
        Rule(f"{ADMIN_PREFIX}clock", methods=["GET", "POST"], endpoint="admin_clock"),
        Rule(f"{ADMIN_PREFIX}settings", methods=["GET", "PUT"], endpoint="admin_settings"),
        # Where signed URLs point: like a blob store, it needs no bearer token, only a valid
        # signature that has not expired.
        Rule(f"{ADMIN_PREFIX}blobs/<file_id>", methods=["GET"], endpoint="admin_blob"),
    ]
)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


class Emulator:
    """Mistral's Batch Jobs and Files API over a SQLite database, as a WSGI application.

    Settings given here are written to the database (``None`` keeps what it holds), so every
    process opening the same database — a served emulator, the CLI's in-process one, a test —
    sees the same speed, faults, clock offset and API keys. ``api_keys``: tokens accepted
    (stored hashed); an empty sequence accepts any non-empty token, the default.
    """

    def __init__(
        self,
        db_path: str | Path,
        *,
        clock: Clock | None = None,
        speed: float | None = None,
        api_keys: Iterable[str] | None = None,
        faults: Faults | None = None,
        seed: int | None = None,
        hour_length: float | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._store = Store(Path(db_path))
        self._files = Files(self._store)
        self._jobs = Jobs(self._store, self._files)
        updates: dict[str, Any] = {}
        if speed is not None:
            updates["speed"] = _positive("speed", speed)
        if hour_length is not None:
            updates["hour_length"] = _positive("hour_length", hour_length)
        if api_keys is not None:
            hashes = sorted({token_owner(key) for key in api_keys if key})
            updates["api_keys"] = hashes or None
        if faults is not None:
            updates["faults"] = faults.to_json()
        if seed is not None:
            updates["seed"] = seed
        if updates:
            self._store.put_settings(**updates)
        self._faults = FaultInjector(self._store.settings().seed)

    # --- Python API (tests, the CLI) ---------------------------------------------------

    @property
    def db_path(self) -> Path:
        return self._store.db_path

    @property
    def blob_dir(self) -> Path:
        return self._store.blob_dir

    def settings(self) -> Settings:
        return self._store.settings()

    def now(self) -> float:
        """Emulated time: the clock plus the persisted offset."""
        return self.clock.now() + self._store.settings().clock_offset

    def advance(self, seconds: float) -> float:
        """Move emulated time forward for every process sharing the database; returns now."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        offset = self._store.add_clock_offset(seconds)
        return self.clock.now() + offset

    def set_speed(self, speed: float) -> None:
        """Speed of jobs created from now on (existing jobs keep their timeline)."""
        self._store.put_settings(speed=_positive("speed", speed))

    def set_hour_length(self, seconds: float) -> None:
        """Seconds in one hour of ``timeout_hours`` for jobs created from now on."""
        self._store.put_settings(hour_length=_positive("hour_length", seconds))

    def set_faults(self, faults: Faults) -> None:
        self._store.put_settings(faults=faults.to_json())

    def faults(self) -> Faults:
        return self._store.settings().faults

    def set_api_keys(self, api_keys: Sequence[str]) -> None:
        hashes = sorted({token_owner(key) for key in api_keys if key})
        self._store.put_settings(api_keys=hashes or None)

    def reseed(self, seed: int | None) -> None:
        """Restart this process's fault decisions from ``seed``."""
        self._faults.reseed(seed)

    def seed_jobs(
        self, bodies: Iterable[Mapping[str, Any]], *, api_key: str, at: float | None = None
    ) -> list[dict[str, Any]]:
        """Create jobs as ``POST /v1/batch/jobs`` would (same validation, same rows), in one
        transaction, without HTTP, faults or the request log: for benchmarks that need
        tens of thousands of jobs. ``at``: their emulated creation time (default: now), so
        that seeded jobs can already be running or finished. All or nothing: an invalid
        body raises the API's error and creates nothing. Returns the jobs as the API would.
        """
        settings = self._store.settings()
        caller = Caller(owner=token_owner(api_key), now=self.now() if at is None else at)
        with self._store.batch():
            return [
                self._jobs.create(caller, settings, json.dumps(body).encode()) for body in bodies
            ]

    def request_log(self) -> list[LoggedRequest]:
        return self._store.request_log()

    def clear_request_log(self) -> None:
        self._store.clear_request_log()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- WSGI --------------------------------------------------------------------------

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = _Request(environ)
        request.sinks = []
        request.new_sink = self._files.new_sink
        try:
            if request.path.startswith(ADMIN_PREFIX):
                response = self._admin(request)
            else:
                response = self._api(request)
        finally:
            for sink in request.sinks:  # an upload that was not kept
                sink.close()
                sink.path.unlink(missing_ok=True)
        return response(environ, start_response)

    def _api(self, request: _Request) -> Response:
        settings = self._store.settings()
        now = self.clock.now() + settings.clock_offset
        if settings.faults.latency:
            time.sleep(settings.faults.latency)
        dropped = False
        response: Response | None = None
        try:
            response, dropped = self._handle(request, settings, now)
        finally:
            self._store.log(
                LoggedRequest(
                    method=request.method,
                    path=request.path,
                    query=request.query_string.decode("latin-1"),
                    status=response.status_code if response is not None else 500,
                    time=now,
                    dropped=dropped,
                )
            )
        if dropped:
            response.close()
            raise DroppedResponse("response dropped after commit (fault injection)")
        return response

    def _handle(self, request: _Request, settings: Settings, now: float) -> tuple[Response, bool]:
        request_id = uuid.uuid4().hex
        request.max_content_length = MAX_SMALL_BODY  # create and upload raise it
        try:
            owner = self._authenticate(request, settings, request_id)
            adapter = _API.bind_to_environ(request.environ)
            endpoint, args = adapter.match()
            if endpoint.startswith("admin_"):
                raise NotFound()
            decision = self._faults.before(settings.faults, is_create=endpoint == "create_job")
            if decision.status == 429:
                raise errors.rate_limited(decision.retry_after or 0)
            if decision.status is not None:
                raise errors.server_error(decision.status)
            caller = Caller(owner=owner, now=now)
            response = self._dispatch(endpoint, args, request, caller, settings)
            return response, decision.drop and response.status_code == 200
        except errors.ApiError as err:
            return _json(err.body, err.status, err.headers), False
        except RequestEntityTooLarge as err:
            body = errors.error_body(err.description or "Request entity too large")
            return _json(body, 413), False
        except MethodNotAllowed as err:
            return _json({"detail": "Method Not Allowed"}, 405, dict(err.get_headers())), False
        except NotFound:
            return _json({"detail": "Not Found"}, 404), False
        except HTTPException as err:
            return _json({"detail": err.description}, err.code or 400), False

    def _authenticate(self, request: _Request, settings: Settings, request_id: str) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.unauthorized(request_id)
        owner = token_owner(token)
        if settings.api_keys is not None and owner not in settings.api_keys:
            raise errors.unauthorized(request_id)
        return owner

    def _dispatch(
        self,
        endpoint: str,
        args: Mapping[str, Any],
        request: _Request,
        caller: Caller,
        settings: Settings,
    ) -> Response:
        match endpoint:
            case "list_jobs":
                return _json(self._jobs.list(caller, request.args))
            case "create_job":
                request.max_content_length = MAX_JSON_BODY
                raw = request.get_data(cache=False)
                return _json(self._jobs.create(caller, settings, raw))
            case "get_job":
                raw_inline = request.args.get("inline")
                inline: bool | None = None
                if raw_inline is not None:
                    inline, problem = query_bool("inline", raw_inline)
                    if problem is not None:
                        raise errors.validation_failed([problem])
                return _json(self._jobs.get(caller, args["job_id"], inline))
            case "cancel_job":
                return _json(self._jobs.cancel(caller, settings, args["job_id"]))
            case "delete_job":
                return _json(self._jobs.delete(caller, args["job_id"]))
            case "list_files":
                return _json(self._files.list(caller, request.args))
            case "upload_file":
                return _json(self._upload(request, caller))
            case "get_file":
                return _json(self._files.get(caller, args["file_id"]))
            case "download_file":
                return self._download(request, caller, args["file_id"])
            case "delete_file":
                return _json(self._files.delete(caller, args["file_id"]))
            case "signed_url":
                return _json(self._signed_url(request, caller, args["file_id"]))
            case "list_models":
                return _json(_list_models(request, caller))
            case "get_model":
                return _json(_get_model(caller, args["model_id"]))
            case "delete_model":
                return _json(_delete_model(args["model_id"]))
        raise NotFound()

    def _upload(self, request: _Request, caller: Caller) -> dict[str, Any]:
        request.max_content_length = self._files.max_file_bytes + 1024 * 1024  # + form fields
        upload = request.files.get("file")
        sink = None
        if upload is not None:
            sink = next((s for s in request.sinks if s.as_io() is upload.stream), None)
        result = self._files.upload(
            caller,
            request.form,
            sink,
            upload.filename if upload is not None else None,
            upload.content_type if upload is not None else None,
        )
        if sink is not None:
            request.sinks.remove(sink)  # kept: renamed into the blob folder
        return result

    def _download(self, request: _Request, caller: Caller, file_id: str) -> Response:
        stream, size, filename = self._files.content(caller, file_id)
        response = Response(
            wrap_file(request.environ, stream),
            mimetype="application/octet-stream",
            direct_passthrough=True,
        )
        response.content_length = size
        response.headers["Content-Disposition"] = _attachment(filename)
        return response

    # --- signed URLs -------------------------------------------------------------------

    def _signed_url(self, request: _Request, caller: Caller, file_id: str) -> dict[str, Any]:
        """``GET /v1/files/{id}/url?expiry=HOURS``: a URL that downloads the file without a
        token until it expires (default 24 hours of emulated time)."""
        raw = request.args.get("expiry", "24")
        hours, problem = query_int("expiry", raw, 1, SIGNED_URL_MAX_HOURS)
        if problem is not None:
            raise errors.validation_failed([problem])
        self._files.get(caller, file_id)  # 404 unless the caller can see the file
        expires = int(caller.now + 3600 * int(hours or 24))
        query = (
            f"owner={caller.owner}&se={expires}&sig={self._sign(file_id, caller.owner, expires)}"
        )
        return {"url": f"{request.host_url}{ADMIN_PREFIX[1:]}blobs/{file_id}?{query}"}

    def _sign(self, file_id: str, owner: str, expires: int) -> str:
        settings_secret = self._store.setting("url_secret")
        if not isinstance(settings_secret, str):
            # First use: one secret per database, shared by every process serving it.
            self._store.put_settings_if_absent(url_secret=secrets.token_hex(32))
            settings_secret = self._store.setting("url_secret")
        message = f"{file_id}\n{owner}\n{expires}".encode()
        return hmac.new(str(settings_secret).encode(), message, hashlib.sha256).hexdigest()

    def _blob(self, request: _Request, file_id: str) -> Response:
        owner = request.args.get("owner", "")
        try:
            expires = int(request.args.get("se", ""))
        except ValueError:
            expires = 0
        expected = self._sign(file_id, owner, expires)
        if not hmac.compare_digest(expected, request.args.get("sig", "")):
            return _json(errors.error_body("The signature of this URL is not valid"), 403)
        now = self.clock.now() + self._store.settings().clock_offset
        if now > expires:
            return _json(errors.error_body("This signed URL has expired"), 403)
        try:
            return self._download(request, Caller(owner=owner, now=now), file_id)
        except errors.ApiError as err:
            return _json(err.body, err.status, err.headers)

    # --- admin -------------------------------------------------------------------------

    def _admin(self, request: _Request) -> Response:
        try:
            endpoint, args = _API.bind_to_environ(request.environ).match()
            body = None
            if request.method in ("PUT", "POST"):
                request.max_content_length = MAX_SMALL_BODY
                body = loads(request.get_data(cache=False))
            match endpoint, request.method:
                case "admin_blob", _:
                    return self._blob(request, args["file_id"])
                case "admin_faults", "PUT":
                    self.set_faults(Faults.from_json(body))
                    return _json(self.faults().to_json())
                case "admin_faults", _:
                    return _json(self.faults().to_json())
                case "admin_requests", "DELETE":
                    self.clear_request_log()
                    return _json({"deleted": True})
                case "admin_requests", _:
                    log = [entry.__dict__ for entry in self.request_log()]
                    return _json({"object": "list", "data": log, "total": len(log)})
                case "admin_clock", "POST":
                    seconds = body.get("advance") if isinstance(body, dict) else None
                    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
                        raise ValueError('expected {"advance": SECONDS}')
                    if not 0 <= seconds <= MAX_CLOCK_STEP:
                        raise ValueError(f"advance must be 0..{MAX_CLOCK_STEP:g} seconds")
                    self.advance(float(seconds))
                    return _json(self._clock_state())
                case "admin_clock", _:
                    return _json(self._clock_state())
                case "admin_settings", "PUT":
                    if not isinstance(body, dict) or set(body) - {"speed", "hour_length"}:
                        raise ValueError('expected {"speed"?: NUMBER, "hour_length"?: SECONDS}')
                    if "speed" in body:
                        self.set_speed(body["speed"])
                    if "hour_length" in body:
                        self.set_hour_length(body["hour_length"])
                    return _json(self._clock_state())
                case "admin_settings", _:
                    return _json(self._clock_state())
            raise NotFound()
        except (ValueError, TypeError) as err:
            return _json(errors.error_body(str(err)[:500]), 400)
        except RequestEntityTooLarge:
            return _json(errors.error_body(f"bodies are limited to {MAX_SMALL_BODY} bytes"), 413)
        except MethodNotAllowed:
            return _json({"detail": "Method Not Allowed"}, 405)
        except NotFound:
            return _json({"detail": "Not Found"}, 404)

    def _clock_state(self) -> dict[str, Any]:
        settings = self._store.settings()
        return {
            "now": self.clock.now() + settings.clock_offset,
            "offset": settings.clock_offset,
            "speed": settings.speed,
            "hour_length": settings.hour_length,
        }


def _attachment(filename: str) -> str:
    """A Content-Disposition for any stored name: an ASCII fallback plus RFC 5987's UTF-8
    form (a name may hold quotes, newlines or anything else an uploader chose)."""
    fallback = "".join(
        c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in filename
    )
    encoded = quote(filename.encode("utf-8", "surrogatepass"), safe="")
    return f"attachment; filename=\"{fallback[:200]}\"; filename*=UTF-8''{encoded}"


def _list_models(request: _Request, caller: Caller) -> dict[str, Any]:
    """``GET /v1/models``: the public catalogue (every key sees all of it)."""
    provider = request.args.get("provider") or None
    model = request.args.get("model") or None
    data = list(catalogue.cards(int(caller.now), provider=provider, model=model))
    return {"object": "list", "data": data}


def _get_model(caller: Caller, model_id: str) -> dict[str, Any]:
    found = catalogue.card(model_id, int(caller.now))
    if found is None:  # fine-tuned ids included: this emulator hosts no fine-tunes
        raise errors.not_found("Model", model_id)
    return found


def _delete_model(model_id: str) -> dict[str, Any]:
    if catalogue.lookup(model_id) is not None:
        raise errors.invalid_request(
            f"Model {model_id} is a base model; only fine-tuned models can be deleted"
        )
    raise errors.not_found("Model", model_id)


_BOUNDS = {"speed": (MIN_SPEED, MAX_SPEED), "hour_length": (MIN_HOUR_LENGTH, MAX_HOUR_LENGTH)}


def _positive(name: str, value: float) -> float:
    low, high = _BOUNDS[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], not {value!r:.40}")
    return float(value)
