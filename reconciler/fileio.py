"""Writing the files the user names (``plan --out``, ``outputs -o``): whole or not at all.

``write_atomically(path, write)`` calls ``write(fh)`` on a temporary file created
exclusively (``mkstemp``: ``O_CREAT | O_EXCL``, a random name, mode 0600) in the
destination's own folder, flushes and fsyncs it, gives it its mode (the existing file's,
else ``mode``, else what the umask allows), then renames it over ``path``. So:

- a failure at any point (a full disk, a dropped download, Ctrl-C) leaves ``path`` as it
  was and no temporary file behind;
- nothing is ever written through a link planted beside the destination (there is no
  predictable temporary name to plant one at), and a link *at* the destination is
  replaced, not followed;
- a destination that exists and is not a regular file (``/dev/stdout``, ``/dev/null``, a
  FIFO) is written directly: renaming over a device is never what the user meant.

Every ``OSError`` becomes a :class:`WriteError` of one line naming the destination, never
the temporary file: ``cannot write plans/x.tfplan: no such folder plans``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, TypeVar

from reconciler.errors import ReconcilerError

T = TypeVar("T")


class WriteError(ReconcilerError):
    """A file the user named could not be written; nothing partial was left."""


def write_atomically(
    path: Path | str,
    write: Callable[[BinaryIO], T],
    *,
    what: str = "",
    mode: int | None = None,
) -> T:
    """Write ``path`` whole with ``write(fh)`` (see the module docstring); its result.

    ``what`` names the file in messages (``plan file``); ``mode`` is the permission of a
    new file (None: 0666 less the umask, as ``open`` would create it)."""
    dest = Path(path)
    label = f"{what} {dest}" if what else str(dest)
    try:
        st = dest.stat()
    except FileNotFoundError:
        st = None
    except OSError as err:
        raise _error(label, dest, err) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise WriteError(f"cannot write {label}: it is a folder")
    if st is not None and not stat.S_ISREG(st.st_mode):
        return _write_special(dest, label, write)
    folder = dest.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=folder)
    except OSError as err:
        raise _error(label, dest, err) from None
    if st is not None:
        mode = stat.S_IMODE(st.st_mode)
    elif mode is None:
        mode = 0o666 & ~_umask()
    try:
        with os.fdopen(fd, "wb") as fh:
            result = write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(dest)
    except OSError as err:
        _remove(tmp)
        raise _error(label, dest, err) from None
    except BaseException:
        _remove(tmp)
        raise
    return result


def _write_special(dest: Path, label: str, write: Callable[[BinaryIO], T]) -> T:
    try:
        with dest.open("wb") as fh:
            result = write(fh)
            fh.flush()
    except OSError as err:
        raise _error(label, dest, err, partial=True) from None
    return result


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def _remove(tmp: str) -> None:
    with contextlib.suppress(OSError):
        Path(tmp).unlink()


def _error(label: str, dest: Path, err: OSError, *, partial: bool = False) -> WriteError:
    folder = dest.parent
    if err.errno == errno.ENOENT and not folder.exists():
        reason = f"no such folder {folder}"
    elif err.errno == errno.ENOTDIR:
        reason = f"{folder} is not a folder"
    elif err.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif err.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    else:
        reason = (err.strerror or str(err)).lower()
    tail = "" if partial else "; nothing was written"
    return WriteError(f"cannot write {label}: {reason}{tail}")
