"""``<root>/.reconciler/cache/``: derived files (shard files, parsed result files).

Everything here can be deleted at any time and is rebuilt when needed: it is never state.
The folder may sit in a repository that others write to, so nothing is trusted:

- every folder on the way is opened with ``O_NOFOLLOW``/``O_DIRECTORY`` and then used by
  descriptor: a symlink planted at ``.reconciler`` or ``cache`` cannot send writes
  elsewhere;
- files are created exclusively (``O_CREAT | O_EXCL | O_NOFOLLOW``) under a fresh temporary
  name, written, then renamed into place: nothing is ever written through an existing file
  or link;
- files are read with ``O_NOFOLLOW`` and checked by their readers (a shard file against
  its sha256, a result summary against its MAC): a corrupt or planted entry is a miss.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Final

CACHE_PARTS: Final = (".reconciler", "cache")
_NOFOLLOW: Final = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY: Final = getattr(os, "O_DIRECTORY", 0)


class CacheError(OSError):
    """The cache folder cannot be used safely (a link or a file where a folder should be)."""


def _open_dir(parent: int | None, name: str, *, create: bool, follow: bool = False) -> int:
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent)
    flags = os.O_RDONLY | _DIRECTORY | (0 if follow else _NOFOLLOW)
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except OSError as err:
        message = f"cannot use {name!r} as a cache folder: {err.strerror}"
        raise CacheError(err.errno, message) from err
    if not stat.S_ISDIR(os.fstat(fd).st_mode):
        os.close(fd)
        raise CacheError(f"{name!r} is not a folder")
    return fd


class CacheDir:
    """One sub-folder of the cache (``shards``, ``results``), held open by descriptor."""

    def __init__(self, root: Path, *parts: str, create: bool = True) -> None:
        fd = _open_dir(None, str(root), create=False, follow=True)  # the root is the user's
        try:
            for part in (*CACHE_PARTS, *parts):
                inner = _open_dir(fd, part, create=create)
                os.close(fd)
                fd = inner
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        self.path = Path(root, *CACHE_PARTS, *parts)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> CacheDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open_read(self, name: str) -> IO[bytes] | None:
        """A cached file for reading, or None when absent or not a regular file."""
        try:
            fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=self.fd)
        except OSError:
            return None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            return None
        return os.fdopen(fd, "rb")

    @contextlib.contextmanager
    def temp(self) -> Iterator[tuple[str, IO[bytes]]]:
        """A new file under a fresh temporary name, created exclusively; removed if the
        block fails. Put it in place with :meth:`commit`."""
        tmp = f".tmp-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=self.fd)
        try:
            with os.fdopen(fd, "wb") as out:
                yield tmp, out
        except BaseException:
            self.remove(tmp)
            raise

    def commit(self, tmp: str, name: str) -> None:
        """Rename a finished temporary file to ``name`` (replacing whatever was there)."""
        os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)

    @contextlib.contextmanager
    def create(self, name: str) -> Iterator[IO[bytes]]:
        """Write ``name`` atomically: in place once the block ends without error."""
        with self.temp() as (tmp, out):
            yield out
        self.commit(tmp, name)

    def remove(self, name: str) -> None:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=self.fd)
