"""Content-addressed uploads of local ``inputs``.

A local input is uploaded under a name that carries the SHA-256 of its bytes
(``reconciler-<sha256>.jsonl``). Before uploading, the Files API is searched for that name:
a file whose bytes are already there is reused, never sent twice, across runs and machines.

The requests of a ``prompts:`` job are generated first, streaming, into a file created
exclusively under ``<root>/.reconciler/cache/`` (readable by its owner only), named by the
digest of its bytes and then uploaded exactly like a local input (verified by that digest
before it is sent); the file is removed afterwards. The same spec always generates the
same bytes, so a second apply finds the upload and sends nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from reconciler.client import MistralClient
from reconciler.config.model import LocalInput, PromptSource
from reconciler.config.prompts import iter_request_lines
from reconciler.errors import ReconcilerError, UnknownOutcome

PURPOSE = "batch"
_CHUNK = 1 << 20


def upload_name(sha256: str) -> str:
    """The file name an input with these bytes is uploaded under."""
    return f"reconciler-{sha256}.jsonl"


class InputChanged(ReconcilerError):
    """A local input's bytes differ from what the plan was made with."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class Uploader:
    """Uploads each distinct input once per apply, shared by all worker threads."""

    def __init__(
        self,
        client: MistralClient,
        root: Path,
        *,
        backoff: Callable[[int], float] = lambda attempt: 0.0,
        attempts: int = 5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._root = root.resolve()
        self._backoff = backoff  # seconds to wait after the n-th upload of unknown outcome
        self._attempts = attempts  # uploads sent for one input at most
        self._sleep = sleep
        self._lock = threading.Lock()
        self._futures: dict[str, Future[str]] = {}
        self.uploaded: list[str] = []  # sha256 of inputs this apply sent
        self.reused: list[str] = []  # sha256 of inputs found already uploaded

    def ensure(self, item: LocalInput) -> str:
        """The file id holding ``item``'s bytes, uploading them if no such file exists."""
        return self._once(item.sha256, lambda: self._ensure(item))

    def ensure_prompts(self, source: PromptSource) -> str:
        """The file id holding the requests generated from ``source``, generating and
        uploading them if no such file exists (once per apply for jobs sharing them)."""
        return self._once("prompts:" + source.digest, lambda: self._ensure_prompts(source))

    def _once(self, key: str, make: Callable[[], str]) -> str:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = Future()
                self._futures[key] = future
        if not owner:
            return future.result()
        try:
            file_id = make()
        except BaseException as err:
            future.set_exception(err)
            raise
        future.set_result(file_id)
        return file_id

    def _ensure(self, item: LocalInput) -> str:
        name = upload_name(item.sha256)
        found = self._find(item.sha256, name, item.size)
        if found is not None:
            with self._lock:
                self.reused.append(item.sha256)
            return found
        path = self._local_path(item)
        actual = file_sha256(path)
        if actual != item.sha256:
            raise InputChanged(
                f"input {item.path} changed since the plan was made "
                f"(sha256 {item.sha256[:12]}… planned, {actual[:12]}… now): plan again"
            )
        for attempt in range(1, self._attempts + 1):
            try:
                uploaded = self._client.upload_file(path, filename=name, purpose=PURPOSE)
            except UnknownOutcome:
                if attempt == self._attempts:
                    raise
                # The upload may have arrived: look before sending the bytes again.
                self._sleep(self._backoff(attempt))
                found = self._find(item.sha256, name, item.size)
                if found is not None:
                    return found
                continue
            with self._lock:
                self.uploaded.append(item.sha256)
            return str(uploaded["id"])
        raise AssertionError("unreachable")

    def _ensure_prompts(self, source: PromptSource) -> str:
        cache = self._cache_folder()
        tmp = cache / f"prompts-{secrets.token_hex(8)}.jsonl.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, 0o600)
        try:
            digest = hashlib.sha256()
            size = lines = 0
            with os.fdopen(fd, "wb") as fh:
                for line in iter_request_lines(self._root, source):
                    digest.update(line)
                    fh.write(line)
                    size += len(line)
                    lines += 1
            rel = tmp.relative_to(self._root).as_posix()
            return self._ensure(LocalInput(rel, digest.hexdigest(), size, lines))
        finally:
            tmp.unlink(missing_ok=True)

    def _cache_folder(self) -> Path:
        """``<root>/.reconciler/cache``, made if missing; never through a symlink (the
        folders could come from a pull request)."""
        folder = self._root
        for part in (".reconciler", "cache"):
            folder = folder / part
            if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
                raise ReconcilerError(f"{folder} must be a folder, not a symlink or a file")
            folder.mkdir(mode=0o700, exist_ok=True)
        return folder

    def _local_path(self, item: LocalInput) -> Path:
        # The loader already refused paths outside the root; a saved plan file is checked
        # again here, since it is read back from disk.
        path = (self._root / item.path).resolve()
        if not path.is_relative_to(self._root) or not path.is_file():
            raise ReconcilerError(f"input {item.path} is not a file inside {self._root}")
        return path

    def _find(self, sha256: str, name: str, size: int) -> str | None:
        pages = self._client.iter_file_pages(search=sha256, purpose=PURPOSE)
        for page in pages:
            for entry in page:
                if (
                    entry.get("filename") == name
                    and entry.get("bytes") == size
                    and not entry.get("deleted")
                ):
                    return str(entry["id"])
        return None
