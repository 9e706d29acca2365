"""reconciler.stream.shards: greedy cutting, its invariants, and the block fast path."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.config.model import JobSpec, LocalInput
from reconciler.stream import sources
from reconciler.stream.model import Cursor, Shard
from reconciler.stream.shards import Cutter, cut, needs_split, shard_label, shard_spec

_line = st.builds(
    lambda n, c: b'{"body":{"x":"' + bytes([c]) * n + b'"}}\n',
    st.integers(0, 40),
    st.sampled_from(b"abcxyz"),
)
_lines = st.lists(_line, max_size=60)
_limits = st.tuples(st.integers(1, 12), st.integers(14, 300))


def positioned(lines: list[bytes]) -> list[tuple[Cursor, bytes]]:
    out, offset = [], 0
    for i, line in enumerate(lines):
        out.append((Cursor(0, offset, i), line))
        offset += len(line)
    return out


def shards_of(lines: list[bytes], limits: tuple[int, int]) -> tuple[Shard, ...]:
    shards, too_large = cut(positioned(lines), *limits)
    assert too_large == [] or any(len(x) > limits[1] for x in lines)
    return shards


def fitting(lines: list[bytes], limits: tuple[int, int]) -> list[bytes]:
    return [x for x in lines if len(x) <= limits[1]]


@settings(max_examples=300)
@given(_lines, _limits)
def test_shards_are_the_input_in_order_without_gap_or_overlap(
    lines: list[bytes], limits: tuple[int, int]
) -> None:
    lines = fitting(lines, limits)
    shards = shards_of(lines, limits)
    assert [s.index for s in shards] == list(range(len(shards)))
    position = 0
    for shard in shards:
        assert shard.first == position
        assert shard.requests >= 1
        content = b"".join(lines[shard.first : shard.stop])
        assert shard.size == len(content)
        assert shard.sha256 == hashlib.sha256(content).hexdigest()
        position = shard.stop
    assert position == len(lines)


@settings(max_examples=300)
@given(_lines, _limits)
def test_every_shard_is_within_both_limits_and_greedy(
    lines: list[bytes], limits: tuple[int, int]
) -> None:
    max_requests, max_bytes = limits
    lines = fitting(lines, limits)
    shards = shards_of(lines, limits)
    for shard, following in zip(shards, [*shards[1:], None], strict=False):
        assert shard.requests <= max_requests and shard.size <= max_bytes
        if following is not None:  # greedy: the next request did not fit
            nxt = len(lines[following.first])
            assert shard.requests == max_requests or shard.size + nxt > max_bytes


@settings(max_examples=300)
@given(_lines, _lines, _limits)
def test_appending_never_changes_earlier_shards(
    lines: list[bytes], more: list[bytes], limits: tuple[int, int]
) -> None:
    lines, more = fitting(lines, limits), fitting(more, limits)
    before = shards_of(lines, limits)
    after = shards_of(lines + more, limits)
    assert after[: max(len(before) - 1, 0)] == before[:-1]
    if before:
        last, grown = before[-1], after[len(before) - 1]
        assert (grown.first, grown.start) == (last.first, last.start)
        assert grown.requests >= last.requests


@settings(max_examples=300)
@given(_lines, _limits, st.data())
def test_editing_one_request_changes_only_its_shard(
    lines: list[bytes], limits: tuple[int, int], data: st.DataObject
) -> None:
    """An edit that keeps the request's length changes only the shard holding it; any
    edit at all changes no shard before it."""
    lines = fitting(lines, limits)
    if not lines:
        return
    i = data.draw(st.integers(0, len(lines) - 1))
    edited = list(lines)
    edited[i] = lines[i].replace(b'"x"', b'"y"')
    before, after = shards_of(lines, limits), shards_of(edited, limits)
    holder = next(s.index for s in before if s.first <= i < s.stop)
    assert len(before) == len(after)
    for b, a in zip(before, after, strict=True):
        if b.index == holder:
            assert (a.first, a.requests, a.size) == (b.first, b.requests, b.size)
            assert a.sha256 != b.sha256 or edited[i] == lines[i]
        else:
            assert a == b
    resized = list(lines)
    resized[i] = lines[i][:-1] + b" " * data.draw(st.integers(0, 20)) + b"\n"
    resized = fitting(resized, limits)
    if len(resized) == len(lines):
        changed = shards_of(resized, limits)
        assert changed[:holder] == before[:holder]


def test_a_request_larger_than_a_file_may_be_is_reported_and_placed_nowhere() -> None:
    lines = [b"a" * 9 + b"\n", b"b" * 30 + b"\n", b"c\n"]
    shards, too_large = cut(positioned(lines), 10, 20)
    assert [(s.first, s.requests) for s in shards] == [(0, 1), (1, 1)]  # each contiguous
    assert [(t.at.line, t.size, t.limit) for t in too_large] == [(1, 31, 20)]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(_lines, _limits, st.data())
def test_whole_blocks_cut_exactly_like_line_by_line(
    lines: list[bytes], limits: tuple[int, int], data: st.DataObject
) -> None:
    """The validator's fast path (blocks of lines, a few find calls per boundary) and
    the line-by-line path give the same shards, and report the same oversize lines."""
    by_line = cut(positioned(lines), *limits)
    blob = b"".join(lines)
    cutter = Cutter(*limits)
    i = 0
    offset = 0
    while i < len(lines):
        n = data.draw(st.integers(1, len(lines) - i))
        size = sum(len(x) for x in lines[i : i + n])
        # A block is a slice of a bigger buffer: offsets are the buffer's, not 0-based.
        pad = data.draw(st.integers(0, 3))
        buffer = b"\n" * pad + blob[offset : offset + size] + b'{"tail":1}\n'
        cutter.add_block(buffer, pad, pad + size, n, Cursor(0, offset, i))
        i += n
        offset += size
    assert (cutter.finish(), cutter.too_large) == by_line


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Cutter(0, 10)


def test_a_job_is_split_only_when_it_does_not_fit_as_it_stands() -> None:
    assert not needs_split(100, [400, 400], max_requests=100, max_bytes=500)
    assert needs_split(101, [10], max_requests=100, max_bytes=500)
    assert needs_split(1, [501], max_requests=100, max_bytes=500)


def test_file_shards_read_back_exactly_their_lines(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_bytes(b'{"body":{},"custom_id":"1"}\n\n  \n{"body":{},"custom_id":"2"}\n')
    b.write_bytes(b'{"body":{},"custom_id":"3"}\r\n{"body":{},"custom_id":"4"}')
    paths = [a, b]
    lines = list(sources.positioned(paths, block_bytes=7))
    assert [line for _, line in lines] == [
        b'{"body":{},"custom_id":"1"}\n',
        b'{"body":{},"custom_id":"2"}\n',
        b'{"body":{},"custom_id":"3"}\r\n',
        b'{"body":{},"custom_id":"4"}\n',
    ]
    assert [c.line for c, _ in lines] == [0, 3, 0, 1]
    shards, _ = cut(lines, 3, 1000)
    assert [(s.first, s.requests) for s in shards] == [(0, 3), (3, 1)]
    for shard in shards:
        got = [x for _, x in sources.positioned(paths, start=shard.start, end=shard.end)]
        assert b"".join(got) == b"".join(x for _, x in lines[shard.first : shard.stop])
        assert hashlib.sha256(b"".join(got)).hexdigest() == shard.sha256
    assert shard_label(["a.jsonl", "b.jsonl"], shards[0]) == "a.jsonl:1-b.jsonl:1"
    assert shard_label(["a.jsonl", "b.jsonl"], shards[1]) == "b.jsonl:2-2"


def test_shard_spec_is_the_job_holding_only_that_shard() -> None:
    lines = [b'{"body":{},"custom_id":"%d"}\n' % i for i in range(5)]
    shards, _ = cut(positioned(lines), 2, 1000)
    spec = JobSpec(
        name="big",
        endpoint="/v1/chat/completions",
        model="m",
        agent_id=None,
        inputs=(LocalInput("big.jsonl", "0" * 64, sum(map(len, lines)), 5),),
        shards=shards,
    )
    one = shard_spec(spec, shards[1])
    assert one.shards == ()
    assert one.inputs == (LocalInput("big.jsonl:3-4", shards[1].sha256, shards[1].size, 2),)
    # The digest is the usual digest of that content: a one-file job of the same bytes.
    alone = JobSpec(
        name="other-name",
        endpoint="/v1/chat/completions",
        model="m",
        agent_id=None,
        inputs=(LocalInput("x.jsonl", shards[1].sha256, 1, 1),),
    )
    assert one.digest == alone.digest != spec.digest


def test_inline_shard_spec_slices_the_canonical_requests() -> None:
    requests = [{"custom_id": str(i), "body": {"n": i}} for i in range(5)]
    import json

    requests_json = json.dumps(requests, sort_keys=True, separators=(",", ":"))
    shards, _ = cut(sources.inline_positioned(requests), 2, 1000)
    spec = JobSpec(
        name="inline",
        endpoint="/v1/chat/completions",
        model="m",
        agent_id=None,
        requests_json=requests_json,
        shards=shards,
    )
    last = shard_spec(spec, shards[2])
    assert json.loads(last.requests_json or "") == requests[4:]
    joined = b"".join(sources.canonical_line(r) for r in requests[4:])
    assert shards[2].sha256 == hashlib.sha256(joined).hexdigest()
