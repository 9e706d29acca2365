"""Shard files: a shard's request lines (or the subset a retry set names), streamed into a
content-addressed file under ``<root>/.reconciler/cache/shards/`` for upload.

The file is named by the sha256 of its bytes (``<sha256>.jsonl``); an existing entry is
reused only after its bytes are proven to hash to that name (a corrupt or planted file is
rebuilt). A full shard must reproduce the sha256 the plan was made with: if the inputs
changed since, :class:`InputChanged` says so and nothing is uploaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import msgspec

from reconciler.errors import ReconcilerError
from reconciler.stream.cache import CacheDir
from reconciler.stream.model import Cursor, Shard
from reconciler.stream.sources import positioned

SHARDS_DIR: Final = "shards"
_CHUNK: Final = 1024 * 1024


class InputChanged(ReconcilerError):
    """A shard's bytes differ from what the plan was made with."""


class _Id(msgspec.Struct):
    custom_id: str | None = None


_ID: Final = msgspec.json.Decoder(_Id)


def custom_id_of(line: bytes) -> str | None:
    """The custom_id of a request line (None when absent or unreadable)."""
    try:
        return _ID.decode(line).custom_id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


@dataclass(frozen=True)
class Built:
    """A shard file ready for upload."""

    path: Path
    sha256: str
    size: int
    requests: int


def select(
    lines: Iterator[tuple[Cursor, bytes]], keep: Container[object] | None
) -> Iterator[bytes]:
    """The lines whose custom_id is in ``keep`` (all of them when ``keep`` is None)."""
    for _, line in lines:
        if keep is None or custom_id_of(line) in keep:
            yield line


def _verified(cache: CacheDir, name: str, sha256: str) -> Built | None:
    fh = cache.open_read(name)
    if fh is None:
        return None
    digest, size, requests = hashlib.sha256(), 0, 0
    with fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            requests += chunk.count(b"\n")
    if digest.hexdigest() != sha256:
        cache.remove(name)  # corrupt or planted: rebuilt below
        return None
    return Built(cache.path / name, sha256, size, requests)


def write_lines(root: Path, lines: Iterator[bytes], *, expect: str | None = None) -> Built:
    """Stream ``lines`` into the content-addressed cache; ``expect`` is the sha256 the
    bytes must have (checked before the file is put in place)."""
    with CacheDir(root, SHARDS_DIR) as cache:
        if expect is not None:
            found = _verified(cache, f"{expect}.jsonl", expect)
            if found is not None:
                return found
        digest, size, requests = hashlib.sha256(), 0, 0
        with cache.temp() as (tmp, out):
            buffer: list[bytes] = []
            held = 0
            for line in lines:
                buffer.append(line)
                held += len(line)
                requests += 1
                if held >= _CHUNK:
                    data = b"".join(buffer)
                    digest.update(data)
                    out.write(data)
                    size += len(data)
                    buffer, held = [], 0
            data = b"".join(buffer)
            digest.update(data)
            out.write(data)
            size += len(data)
        sha = digest.hexdigest()
        if expect is not None and sha != expect:
            cache.remove(tmp)
            raise InputChanged(
                f"the requests changed since the plan was made (sha256 {expect[:12]}… planned,"
                f" {sha[:12]}… now): plan again"
            )
        name = f"{sha}.jsonl"
        cache.commit(tmp, name)
        return Built(cache.path / name, sha, size, requests)


def build_shard(root: Path, paths: Sequence[Path], shard: Shard) -> Built:
    """The file of one shard of local inputs, checked against the shard's sha256."""
    return write_lines(
        root,
        select(positioned(paths, start=shard.start, end=shard.end), None),
        expect=shard.sha256,
    )


def build_subset(root: Path, paths: Sequence[Path], shard: Shard, keep: Container[object]) -> Built:
    """The file of a retry job: the lines of ``shard`` whose custom_id is in ``keep``
    (a :class:`~reconciler.stream.retry.RetrySet`)."""
    lines = positioned(paths, start=shard.start, end=shard.end)
    return write_lines(root, select(lines, keep))
