"""Reading finished jobs' result files: the I/O edge of retries and capacity.

:func:`read_errors` stream-parses an error file into its failures (custom_id, HTTP status,
a short message); :func:`read_output_ids` reads only the custom_ids of an output file (for
TIMEOUT_EXCEEDED/CANCELLED jobs, to know which requests got an answer). Both read from a
file-like in blocks and hold only what they return. Result files come from the API and are
untrusted: a line that is not what the format says is counted as unreadable, never raised;
an over-long line is skipped.

:class:`ResultCache` keeps those summaries under ``<root>/.reconciler/cache/results/``,
keyed by file id (result files are immutable, so a summary never goes stale). The cache is
derivable, never state: each entry ends with an HMAC over its bytes under a key kept
outside the config root (in the user's cache folder), so an entry that is corrupt, or was
planted in the repository, fails the check and is fetched again.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from reconciler.stream.cache import CacheDir, CacheError
from reconciler.stream.model import Failure

BLOCK_BYTES: Final = 1024 * 1024
MAX_LINE_BYTES: Final = 16 * 1024 * 1024
MAX_MESSAGE: Final = 200  # characters of an error message kept for display
RESULTS_DIR: Final = "results"
FORMAT: Final = 1
_FILE_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")


class _Response(msgspec.Struct):
    status_code: int | None = None
    body: Any = None


class _ErrorLine(msgspec.Struct):
    custom_id: str | None = None
    response: _Response | None = None
    error: Any = None


class _IdLine(msgspec.Struct):
    custom_id: str | None = None


_ERROR: Final = msgspec.json.Decoder(_ErrorLine)
_ID: Final = msgspec.json.Decoder(_IdLine)


@dataclass(frozen=True)
class ErrorSummary:
    failures: tuple[Failure, ...]  # in file order
    unreadable: int = 0  # lines that were not a result line with a string custom_id


@dataclass(frozen=True)
class OutputIds:
    ids: frozenset[str]
    unreadable: int = 0


def _lines(fh: IO[bytes]) -> Iterator[bytes | None]:
    """The non-blank lines of ``fh`` (None for one skipped as over-long)."""
    pending = b""
    skipping = False
    while block := fh.read(BLOCK_BYTES):
        if skipping:
            nl = block.find(b"\n")
            if nl < 0:
                continue
            block, skipping = block[nl + 1 :], False
            yield None
        data = pending + block if pending else block
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        for raw in data[:cut].split(b"\n")[:-1]:
            if raw.strip():
                yield raw
        if len(pending) > MAX_LINE_BYTES:
            pending, skipping = b"", True
    if skipping:
        yield None
    elif pending.strip():
        yield pending


def _message(line: _ErrorLine) -> str:
    error = line.error
    text: object = None
    if isinstance(error, dict):
        text = error.get("message") or error.get("detail")
    elif isinstance(error, str):
        text = error
    if text is None and line.response is not None and isinstance(line.response.body, dict):
        text = line.response.body.get("message") or line.response.body.get("detail")
    if text is None:
        return ""
    shown = str(text)
    return shown if len(shown) <= MAX_MESSAGE else shown[: MAX_MESSAGE - 1] + "…"


def read_errors(fh: IO[bytes]) -> ErrorSummary:
    """The failures of an error file, in file order."""
    failures: list[Failure] = []
    unreadable = 0
    for raw in _lines(fh):
        if raw is None:
            unreadable += 1
            continue
        try:
            line = _ERROR.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            unreadable += 1
            continue
        if line.custom_id is None:
            unreadable += 1
            continue
        status = line.response.status_code if line.response is not None else None
        failures.append(Failure(line.custom_id, status, _message(line)))
    return ErrorSummary(tuple(failures), unreadable)


def read_output_ids(fh: IO[bytes]) -> OutputIds:
    """The custom_ids of an output file (response bodies are skipped, never built)."""
    ids: set[str] = set()
    unreadable = 0
    for raw in _lines(fh):
        if raw is None:
            unreadable += 1
            continue
        try:
            cid = _ID.decode(raw).custom_id
        except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
            unreadable += 1
            continue
        if cid is None:
            unreadable += 1
        else:
            ids.add(cid)
    return OutputIds(frozenset(ids), unreadable)


# -- the cache ----------------------------------------------------------------------------


def _key_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reconciler" / "result-cache.key"


def cache_key(path: Path | None = None) -> bytes | None:
    """The MAC key of result-cache entries: 32 random bytes in the user's cache folder,
    outside any config root, created on first use (None when that folder is unusable)."""
    path = path or _key_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as fh:
                key = fh.read(64)
            return key if len(key) == 32 else None
        with os.fdopen(fd, "wb") as fh:
            key = secrets.token_bytes(32)
            fh.write(key)
        return key
    except OSError:
        return None


Fetch = Callable[[IO[bytes]], None]  # writes the file's bytes (e.g. client.download_file)


class ResultCache:
    """Summaries of result files under ``<root>/.reconciler/cache/results/``.

    ``fetch`` is called only on a miss; ``fetched`` counts those calls (the download cost
    a plan reports)."""

    def __init__(self, root: Path, *, key: bytes | None = None, enabled: bool = True) -> None:
        self.root = root
        self.key = key if key is not None else (cache_key() if enabled else None)
        self.fetched = 0

    def errors(self, file_id: str, fetch: Fetch) -> ErrorSummary:
        cached = self._load(file_id, "errors")
        if cached is not None:
            rows, unreadable = cached
            return ErrorSummary(tuple(Failure(c, s, m) for c, s, m in rows), unreadable)
        with self._download(fetch) as fh:
            summary = read_errors(fh)
        rows = [[f.custom_id, f.status_code, f.message] for f in summary.failures]
        self._store(file_id, "errors", rows, summary.unreadable)
        return summary

    def output_ids(self, file_id: str, fetch: Fetch) -> OutputIds:
        cached = self._load(file_id, "outputs")
        if cached is not None:
            rows, unreadable = cached
            return OutputIds(frozenset(rows), unreadable)
        with self._download(fetch) as fh:
            summary = read_output_ids(fh)
        self._store(file_id, "outputs", sorted(summary.ids), summary.unreadable)
        return summary

    @contextlib.contextmanager
    def _download(self, fetch: Fetch) -> Iterator[IO[bytes]]:
        self.fetched += 1
        with tempfile.TemporaryFile(prefix="reconciler-result-") as tmp:
            fetch(tmp)
            tmp.seek(0)
            yield tmp

    def _usable(self, file_id: str) -> bool:
        return self.key is not None and _FILE_ID.fullmatch(file_id) is not None

    def _mac(self, data: bytes) -> str:
        assert self.key is not None
        return hmac.new(self.key, data, hashlib.sha256).hexdigest()

    def _load(self, file_id: str, kind: str) -> tuple[list[Any], int] | None:
        if not self._usable(file_id):
            return None
        try:
            with CacheDir(self.root, RESULTS_DIR, create=False) as cache:
                fh = cache.open_read(f"{file_id}.{kind}")
                if fh is None:
                    return None
                with fh:
                    data = fh.read()
        except (CacheError, OSError):
            return None
        body, sep, mac = data.rpartition(b"\nmac:")
        expected = self._mac(body + b"\n").encode()
        if not sep or not hmac.compare_digest(mac.strip(), expected):
            return None  # corrupt or planted: fetched again
        try:
            head, *rows = body.split(b"\n")
            header = msgspec.json.decode(head)
            if not isinstance(header, dict) or (
                header.get("format"),
                header.get("kind"),
                header.get("file_id"),
            ) != (FORMAT, kind, file_id):
                return None
            return [msgspec.json.decode(r) for r in rows], int(header["unreadable"])
        except (msgspec.DecodeError, ValueError, TypeError, AttributeError):
            return None

    def _store(self, file_id: str, kind: str, rows: list[Any], unreadable: int) -> None:
        if not self._usable(file_id):
            return
        header = {"format": FORMAT, "kind": kind, "file_id": file_id, "unreadable": unreadable}
        name = f"{file_id}.{kind}"
        with (
            contextlib.suppress(CacheError, OSError),
            CacheDir(self.root, RESULTS_DIR) as cache,
            cache.create(name) as out,
        ):
            mac = hmac.new(self.key or b"", digestmod=hashlib.sha256)
            for part in (msgspec.json.encode(header), *map(msgspec.json.encode, rows)):
                out.write(part + b"\n")
                mac.update(part + b"\n")
            out.write(b"mac:" + mac.hexdigest().encode() + b"\n")
