"""``outputs NAME``: the results of every shard and retry, one line per custom_id.

Each custom_id gets its success if any attempt succeeded, else its last failure (highest
attempt). Lines are ordered by custom_id as ``outputs`` always ordered them: numeric ids as
numbers ("2" before "10"), then the others as text, then lines without a custom_id (all
kept, in the order read). ``failed_only`` writes just the final failures.

Memory is constant at any size: an external sort. Lines are read from file-likes in blocks,
turned into records whose bytes sort in the wanted order (the custom_id's sort key, then
success before failure, then the latest attempt first), sorted in runs of bounded size
spilled to temporary files, and the runs are merged with :func:`heapq.merge`; the first
record of each custom_id wins.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Final

import msgspec

RUN_BYTES: Final = 32 * 1024 * 1024
BLOCK_BYTES: Final = 1024 * 1024
_SEP: Final = b"\x01"  # below every hex digit: "ab" sorts before "abc"


class _Id(msgspec.Struct):
    custom_id: str | None = None


_ID: Final = msgspec.json.Decoder(_Id)


@dataclass(frozen=True)
class Attempt:
    """The result files of one unit (a shard or a retry), as readable streams."""

    attempt: int  # 1 for the shard, 2.. for its retries
    output: IO[bytes] | None = None
    errors: IO[bytes] | None = None


@dataclass(frozen=True)
class Merged:
    written: int  # lines written
    succeeded: int  # custom_ids with a success
    failed: int  # custom_ids whose every attempt failed (written or not)
    anonymous: int  # lines without a custom_id (written as they are, unless failed_only)


def sort_prefix(custom_id: str | None) -> bytes:
    """Bytes that sort like ``outputs``' order of custom_ids (None: after all others)."""
    if custom_id is None:
        return b"2"
    text = custom_id.encode("utf-8", "surrogatepass").hex().encode()
    if custom_id.isascii() and custom_id.isdigit() and len(custom_id) < 19:
        return b"0%019d" % int(custom_id) + text
    return b"1" + text


def _custom_id(raw: bytes) -> str | None:
    try:
        return _ID.decode(raw).custom_id
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def _raw_lines(fh: IO[bytes]) -> Iterator[bytes]:
    pending = b""
    while block := fh.read(BLOCK_BYTES):
        data = pending + block if pending else block
        cut = data.rfind(b"\n") + 1
        pending = data[cut:]
        for raw in data[:cut].split(b"\n"):
            if raw.strip():
                yield raw.strip()
    if pending.strip():
        yield pending.strip()


def _records(attempts: Sequence[Attempt]) -> Iterator[bytes]:
    seq = 0
    for unit in attempts:
        rank = b"%06d" % max(0, 999_999 - unit.attempt)  # later attempts sort first
        for failed, fh in ((b"0", unit.output), (b"1", unit.errors)):
            if fh is None:
                continue
            for raw in _raw_lines(fh):
                seq += 1
                prefix = sort_prefix(_custom_id(raw))
                yield prefix + _SEP + failed + rank + b"%012d" % seq + b"\t" + raw


def _runs(records: Iterable[bytes], run_bytes: int) -> list[Iterator[bytes]]:
    """Sorted runs: all but the last spilled to temporary files."""
    runs: list[Iterator[bytes]] = []
    batch: list[bytes] = []
    held = 0
    for record in records:
        batch.append(record)
        held += len(record) + 64
        if held >= run_bytes:
            batch.sort()
            runs.append(_spill(batch))
            batch, held = [], 0
    batch.sort()
    runs.append(iter(batch))
    return runs


def _spill(batch: list[bytes]) -> Iterator[bytes]:
    # Closed by _read_run once the merge has read it (or when it is collected).
    tmp = tempfile.TemporaryFile(prefix="reconciler-merge-")  # noqa: SIM115
    for record in batch:
        tmp.write(record + b"\n")
    tmp.seek(0)
    return _read_run(tmp)


def _read_run(tmp: IO[bytes]) -> Iterator[bytes]:
    with tmp:
        for line in tmp:
            yield line[:-1]


def merge(
    attempts: Sequence[Attempt],
    out: IO[bytes],
    *,
    failed_only: bool = False,
    run_bytes: int = RUN_BYTES,
) -> Merged:
    """Write the merged results of ``attempts`` to ``out``."""
    written = succeeded = failed = anonymous = 0
    previous: bytes | None = None
    for record in heapq.merge(*_runs(_records(attempts), run_bytes)):
        head, _, line = record.partition(b"\t")
        key, _, rest = head.partition(_SEP)
        is_failure = rest[:1] == b"1"
        if key == b"2":
            anonymous += 1
            if not failed_only:
                out.write(line + b"\n")
                written += 1
            continue
        if key == previous:
            continue  # a worse attempt of the same custom_id
        previous = key
        if is_failure:
            failed += 1
        else:
            succeeded += 1
        if failed_only and not is_failure:
            continue
        out.write(line + b"\n")
        written += 1
    return Merged(written, succeeded, failed, anonymous)
