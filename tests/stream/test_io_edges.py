"""reconciler.stream's I/O edges: result reading and its cache, shard files, output merge."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.stream import build, merge, results
from reconciler.stream.cache import CacheDir, CacheError
from reconciler.stream.model import Failure
from reconciler.stream.retry import RetrySet
from reconciler.stream.shards import cut
from reconciler.stream.sources import positioned


def result_line(cid: str | None, status: int | None = 200, **extra: object) -> bytes:
    obj: dict[str, object] = {"id": "batch-1", "custom_id": cid, "error": None}
    obj["response"] = None if status is None else {"status_code": status, "body": {"ok": 1}}
    obj.update(extra)
    return json.dumps(obj).encode() + b"\n"


# -- reading result files ---------------------------------------------------------------------


def test_error_files_are_read_line_by_line_and_untrusted_lines_are_counted() -> None:
    data = (
        result_line("a", 429, error={"message": "rate limited"})
        + b"\n"
        + result_line("b", None, error="timeout")
        + b"not json\n"
        + result_line(None, 400)
        + b'{"custom_id": 5}\n'
        + result_line("c", 400, error={"message": "x" * 500})
    )
    summary = results.read_errors(io.BytesIO(data))
    assert [(f.custom_id, f.status_code) for f in summary.failures] == [
        ("a", 429),
        ("b", None),
        ("c", 400),
    ]
    assert summary.failures[0].message == "rate limited"
    assert len(summary.failures[2].message) == results.MAX_MESSAGE
    assert summary.unreadable == 3


def test_output_ids_skip_bodies_and_overlong_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "MAX_LINE_BYTES", 100)
    monkeypatch.setattr(results, "BLOCK_BYTES", 16)
    data = (
        result_line("a") + b'{"custom_id": "x", "pad": "' + b"y" * 300 + b'"}\n' + result_line("b")
    )
    summary = results.read_output_ids(io.BytesIO(data))
    assert summary.ids == {"a", "b"} and summary.unreadable == 1


def _fetcher(data: bytes, calls: list[int]) -> results.Fetch:
    def fetch(out: IO[bytes]) -> None:
        calls.append(1)
        out.write(data)

    return fetch


def test_result_cache_fetches_once_and_refetches_corrupt_or_planted_entries(
    tmp_path: Path,
) -> None:
    data = result_line("a", 500) + result_line("b", 400)
    calls: list[int] = []
    cache = results.ResultCache(tmp_path, key=b"k" * 32)
    first = cache.errors("file-1", _fetcher(data, calls))
    again = results.ResultCache(tmp_path, key=b"k" * 32).errors("file-1", _fetcher(b"", calls))
    assert first == again and len(calls) == 1
    entry = tmp_path / ".reconciler" / "cache" / "results" / "file-1.errors"
    # Planted: a well-formed entry written without the key (e.g. committed in a PR).
    forged = results.ResultCache(tmp_path / "elsewhere", key=b"x" * 32)
    (tmp_path / "elsewhere").mkdir()
    forged.errors("file-1", _fetcher(result_line("a", 200), []))
    entry.write_bytes((tmp_path / "elsewhere/.reconciler/cache/results/file-1.errors").read_bytes())
    assert cache.errors("file-1", _fetcher(data, calls)) == first and len(calls) == 2
    entry.write_bytes(entry.read_bytes().replace(b"500", b"200"))  # corrupt
    assert cache.errors("file-1", _fetcher(data, calls)) == first and len(calls) == 3
    entry.unlink()
    entry.symlink_to(tmp_path / "elsewhere/.reconciler/cache/results/file-1.errors")
    assert cache.errors("file-1", _fetcher(data, calls)) == first and len(calls) == 4
    assert not entry.is_symlink()  # replaced by a real entry, never written through


def test_result_cache_of_output_ids_and_unsafe_file_ids(tmp_path: Path) -> None:
    calls: list[int] = []
    cache = results.ResultCache(tmp_path, key=b"k" * 32)
    data = result_line("a") + result_line("b")
    assert cache.output_ids("f2", _fetcher(data, calls)).ids == {"a", "b"}
    assert cache.output_ids("f2", _fetcher(data, calls)).ids == {"a", "b"}
    assert len(calls) == 1
    assert cache.output_ids("../evil", _fetcher(data, calls)).ids == {"a", "b"}
    assert len(calls) == 2  # never cached under a name that is not a plain file id
    assert not (tmp_path / ".reconciler" / "evil.outputs").exists()


def test_cache_key_lives_outside_the_root_and_is_created_once(tmp_path: Path) -> None:
    path = tmp_path / "user-cache" / "key"
    key = results.cache_key(path)
    assert key is not None and len(key) == 32 and results.cache_key(path) == key
    assert os.stat(path).st_mode & 0o077 == 0


def test_a_link_planted_at_the_cache_folder_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / ".reconciler").symlink_to(outside)
    with pytest.raises(CacheError):
        CacheDir(root, "shards")
    assert list(outside.iterdir()) == []


# -- shard files ----------------------------------------------------------------------------


def _inputs(tmp_path: Path) -> list[Path]:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b"".join(b'{"custom_id":"%d","body":{}}\n' % i for i in range(5)) + b"\n")
    b.write_bytes(b"".join(b'{"custom_id":"%d","body":{}}\n' % i for i in range(5, 9)))
    return [a, b]


def test_shard_files_are_built_content_addressed_and_verified(tmp_path: Path) -> None:
    paths = _inputs(tmp_path)
    shards, _ = cut(positioned(paths), 4, 10_000)
    built = [build.build_shard(tmp_path, paths, s) for s in shards]
    for shard, file in zip(shards, built, strict=True):
        data = file.path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == shard.sha256 == file.sha256
        assert file.path.name == f"{shard.sha256}.jsonl"
        assert (file.requests, file.size) == (shard.requests, shard.size)
    # A corrupt cached file is rebuilt; a changed input is refused.
    built[0].path.write_bytes(b"tampered\n")
    assert build.build_shard(tmp_path, paths, shards[0]).path.read_bytes() != b"tampered\n"
    paths[0].write_bytes(paths[0].read_bytes().replace(b'"1"', b'"x"'))
    built[0].path.unlink()
    with pytest.raises(build.InputChanged):
        build.build_shard(tmp_path, paths, shards[0])
    assert sorted(p.name for p in built[0].path.parent.iterdir()) == sorted(
        [built[1].path.name, built[2].path.name]
    )  # the failed build left nothing behind


def test_retry_files_hold_only_the_retry_set(tmp_path: Path) -> None:
    paths = _inputs(tmp_path)
    (shard,), _ = cut(positioned(paths), 100, 10_000)
    only = build.build_subset(tmp_path, paths, shard, RetrySet(frozenset({"2", "7"}), False, 2))
    assert [json.loads(x)["custom_id"] for x in only.path.read_bytes().splitlines()] == ["2", "7"]
    rest = RetrySet(frozenset({str(i) for i in range(8)}), True, 1)
    file = build.build_subset(tmp_path, paths, shard, rest)
    assert file.path.read_bytes() == b'{"custom_id":"8","body":{}}\n' and file.requests == 1


# -- merging outputs ------------------------------------------------------------------------

_cids = st.one_of(st.integers(0, 30).map(str), st.sampled_from(["a", "b", "a1", "é", "007"]))


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(st.tuples(_cids, st.booleans()), max_size=12),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
    st.sampled_from([64, 10_000]),
)
def test_merge_keeps_one_line_per_custom_id_sorted_success_first_then_last_failure(
    units: list[list[tuple[str, bool]]], failed_only: bool, run_bytes: int
) -> None:
    attempts = []
    best: dict[str, tuple[bool, int]] = {}
    for n, unit in enumerate(units, start=1):
        out, err = io.BytesIO(), io.BytesIO()
        for cid, ok in unit:
            (out if ok else err).write(result_line(cid, 200 if ok else 500, attempt=n))
            prior = best.get(cid)
            if prior is None or (ok and not prior[0]) or (not ok and not prior[0]):
                best[cid] = (ok, n) if not (prior and prior[0]) else prior
        out.seek(0)
        err.seek(0)
        attempts.append(merge.Attempt(n, out, err))
    sink = io.BytesIO()
    summary = merge.merge(attempts, sink, failed_only=failed_only, run_bytes=run_bytes)
    lines = [json.loads(x) for x in sink.getvalue().splitlines()]
    expected = sorted(
        (cid for cid, (ok, _) in best.items() if not (failed_only and ok)),
        key=merge.sort_prefix,
    )
    assert [x["custom_id"] for x in lines] == expected
    for line in lines:
        ok, _ = best[line["custom_id"]]
        assert (line["response"]["status_code"] == 200) == ok
        if not ok:
            assert line["attempt"] == max(
                n for n, unit in enumerate(units, start=1) if (line["custom_id"], False) in unit
            )
    assert summary.succeeded == sum(ok for ok, _ in best.values())
    assert summary.failed == sum(not ok for ok, _ in best.values())


def test_merge_order_is_the_outputs_order() -> None:
    ids = ["10", "2", "b", "007", "7", "a", "99999999999999999999"]
    out = io.BytesIO(b"".join(result_line(c) for c in ids) + result_line(None))
    sink = io.BytesIO()
    merge.merge([merge.Attempt(1, out)], sink)
    got = [json.loads(x)["custom_id"] for x in sink.getvalue().splitlines()]
    assert got == ["2", "007", "7", "10", "99999999999999999999", "a", "b", None]


def test_failures_type_is_plain_data() -> None:
    assert Failure("a", None) == Failure("a", None, "")
