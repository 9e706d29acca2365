"""reconciler.inputs: streaming validation + sha256 of local JSONL input files."""

from __future__ import annotations

import hashlib
import json
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import inputs
from reconciler.config.model import Limits
from reconciler.errors import Location, Problem
from reconciler.inputs import CustomIdIndex, InputFile, check_input, check_inputs
from reconciler.stream import sources
from reconciler.stream.shards import cut


def line(cid: str | None, **body: object) -> str:
    obj: dict[str, object] = {"body": body or {"messages": [{"role": "user", "content": "hi"}]}}
    if cid is not None:
        obj["custom_id"] = cid
    return json.dumps(obj) + "\n"


def write(tmp_path: Path, name: str, content: str | bytes) -> InputFile:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return InputFile(path, name, name)


def messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def test_valid_file_hash_size_and_request_count(tmp_path: Path) -> None:
    content = line("a") + "\n   \n" + line(None) + line("b") + "\r\n"
    (local,), problems = check_inputs([write(tmp_path, "in.jsonl", content)])
    assert problems == []
    assert local.path == "in.jsonl"
    assert local.sha256 == hashlib.sha256(content.encode()).hexdigest()
    assert local.size == len(content.encode())
    assert local.lines == 3  # blank and whitespace-only lines are not requests


def test_last_line_without_newline_and_crlf(tmp_path: Path) -> None:
    content = line("a").replace("\n", "\r\n") + line("b").rstrip("\n")
    (local,), problems = check_inputs([write(tmp_path, "in.jsonl", content)])
    assert problems == []
    assert local.lines == 2


def test_each_kind_of_bad_line(tmp_path: Path) -> None:
    content = (
        line("a")  # 1 ok
        + "[1, 2]\n"  # 2
        + '{"body": []}\n'  # 3
        + '{"custom_id": "x"}\n'  # 4
        + '{"custom_id": 3, "body": {}}\n'  # 5
        + '{"custom_id": "a", "body": {}}\n'  # 6 duplicate of line 1
        + '{"body": {}} {"body": {}}\n'  # 7 two values on one line
        + '{"body":\n'  # 8 a value spread over two lines
        + "{}}\n"  # 9
        + '{"body": {"t": Infinity}}\n'  # 10
        + '{"custom_id": "q", "custom_id": "r", "body": {}}\n'  # 11
        + '{"body": {"note": "\\ud800 lone surrogate: json accepts it"}}\n'  # 12 ok
        + '{"custom_id": "s", "body": {"custom_id": "nested is fine"}}\n'  # 13 ok
    )
    (local,), problems = check_inputs([write(tmp_path, "in.jsonl", content)])
    assert local.lines == 13
    assert messages(problems) == [
        "in.jsonl:2:1: each line must be a JSON object, not an array",
        "in.jsonl:3:1: body: must be a JSON object, not an array",
        "in.jsonl:4:1: body: missing required field",
        "in.jsonl:5:1: custom_id: must be a string, not a number",
        "in.jsonl:6:1: custom_id: duplicate 'a' (first at line 1); custom_ids must be unique"
        " within a job",
        "in.jsonl:7:14: invalid JSON: Extra data",
        "in.jsonl:8:9: invalid JSON: Expecting value",
        "in.jsonl:9:3: invalid JSON: Extra data",
        "in.jsonl:10:1: invalid JSON: Infinity is not valid JSON",
        "in.jsonl:11:1: custom_id: appears twice on this line",
    ]


def test_utf8_errors_and_bom(tmp_path: Path) -> None:
    content = (
        b"\xef\xbb\xbf" + line("a").encode() + b'{"body": {"q": "\xc3\x28"}}\n' + line("c").encode()
    )
    (local,), problems = check_inputs([write(tmp_path, "in.jsonl", content)])
    assert local.lines == 3
    assert messages(problems) == [
        "in.jsonl:1:1: starts with a byte order mark (BOM); save as UTF-8 without BOM",
        "in.jsonl:2:17: not valid UTF-8 (byte 0xc3)",
    ]


def test_empty_and_blank_files(tmp_path: Path) -> None:
    _, problems = check_inputs([write(tmp_path, "empty.jsonl", "")])
    assert messages(problems) == ["empty.jsonl: is empty: expected one JSON request per line"]
    _, problems = check_inputs([write(tmp_path, "blank.jsonl", "\n \n\n")])
    assert messages(problems) == ["blank.jsonl: has no requests (only blank lines)"]


def test_custom_ids_are_unique_across_the_files_of_one_job(tmp_path: Path) -> None:
    a = write(tmp_path, "a.jsonl", line("x") + line("y"))
    b = write(tmp_path, "b.jsonl", line("z") + line("y") + line(None) + line(None))
    locals_, problems = check_inputs([a, b])
    assert [i.lines for i in locals_] == [2, 4]
    assert messages(problems) == [
        "b.jsonl:2:1: custom_id: duplicate 'y' (first at a.jsonl:2); custom_ids must be"
        " unique within a job",
    ]
    # Each file alone is fine: uniqueness is per job, not per file.
    assert check_inputs([b])[1] == []


@pytest.mark.parametrize("bound", [0, 1, 3, 1000])
def test_spilling_to_sqlite_finds_the_same_duplicates(tmp_path: Path, bound: int) -> None:
    """Whatever the in-memory bound, the same duplicates are reported, in order."""
    ids = ["a", "b", "c", "a", "d", "b", "e", "a", "f"]
    a = write(tmp_path, "a.jsonl", "".join(line(i) for i in ids))
    b = write(tmp_path, "b.jsonl", line("f") + line("g") + line("c"))
    _, problems = check_inputs([a, b], max_ids_in_memory=bound)
    assert messages(problems) == [
        f"a.jsonl:{n}:1: custom_id: duplicate {cid!r} (first at line {first}); custom_ids"
        " must be unique within a job"
        for n, cid, first in [(4, "a", 1), (6, "b", 2), (8, "a", 1)]
    ] + [
        f"b.jsonl:{n}:1: custom_id: duplicate {cid!r} (first at {where}); custom_ids must be"
        " unique within a job"
        for n, cid, where in [(1, "f", "a.jsonl:9"), (3, "c", "a.jsonl:3")]
    ]


def test_custom_id_index_spills_beyond_its_bound() -> None:
    with CustomIdIndex(max_in_memory=2) as index:
        index.add(["a", "b"])
        states = [index.spilled]
        index.add(["a"])
        assert index.duplicates == {"a"}
        index.add(["c"])
        states.append(index.spilled)
        assert states == [False, True]
        index.add(["b", "d", "d", "e"])
        exact, hashes = index.suspects()
        assert exact == {"a"}
        assert hashes == {hash("b"), hash("d")}


def test_custom_id_index_partitions_find_every_duplicate_in_bounded_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(CustomIdIndex, "BATCH", 64)
    ids = [f"id-{i}" for i in range(5_000)]
    with CustomIdIndex(max_in_memory=10) as index:
        for k in range(0, len(ids), 37):
            index.add(ids[k : k + 37])
        index.add(["id-7", "id-4999", "new"])
        assert index._spill is not None  # sorted runs went to disk
        assert index.suspects() == (set(), {hash("id-7"), hash("id-4999")})


def test_problems_are_capped_per_file_with_a_count_of_the_rest(tmp_path: Path) -> None:
    content = "".join("not json\n" if i % 2 else line(str(i)) for i in range(100))
    _, problems = check_inputs([write(tmp_path, "in.jsonl", content)], max_problems=5)
    assert messages(problems) == [
        *(f"in.jsonl:{n}:1: invalid JSON: Expecting value" for n in (2, 4, 6, 8, 10)),
        "in.jsonl:12:1: 45 more problems from here on (not shown)",
    ]


def test_a_file_over_the_byte_limit_is_cut_into_shards_not_refused(tmp_path: Path) -> None:
    spec = write(tmp_path, "big.jsonl", "".join(line(str(i)) for i in range(10)))
    size = spec.path.stat().st_size
    result = inputs.check_job_inputs([spec], limits=Limits(max_bytes_per_file=size // 3))
    assert result.problems == []
    assert result.locals[0].size == size and result.locals[0].lines == 10
    assert [s.requests for s in result.shards] == [3, 3, 3, 1]
    assert all(s.size <= size // 3 for s in result.shards)


def test_a_job_that_fits_is_not_split_and_keeps_its_files(tmp_path: Path) -> None:
    """Two files each within the per-file limit: one job of two files, as before."""
    a = write(tmp_path, "a.jsonl", line("a") * 1)
    b = write(tmp_path, "b.jsonl", line("b"))
    limit = max(a.path.stat().st_size, b.path.stat().st_size)
    result = inputs.check_job_inputs([a, b], limits=Limits(max_bytes_per_file=limit))
    assert result.problems == [] and result.shards == ()
    assert check_inputs([a, b]) == (result.locals, [])


def test_a_request_too_large_for_any_shard_is_named(tmp_path: Path) -> None:
    big = line("b", q="x" * 300)
    content = line("a") + big + line("d")
    spec = write(tmp_path, "in.jsonl", content)
    result = inputs.check_job_inputs(
        [spec], limits=Limits(max_requests_per_job=1, max_bytes_per_file=200)
    )
    assert messages(result.problems) == [
        f"in.jsonl:2:1: request is {len(big)} bytes, more than limits.max_bytes_per_file"
        " (200): it fits in no shard"
    ]
    assert result.shards == ()


@pytest.mark.parametrize("block", [7, 64, 1 << 20])
def test_shards_of_the_validator_are_those_of_the_pure_cutter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    """The fast path's block cutting and the line-by-line cutter agree, whatever the
    block and piece sizes, with blank lines, CRLF and a missing final newline."""
    monkeypatch.setattr(inputs, "BLOCK_BYTES", block)
    monkeypatch.setattr(inputs, "PIECE_BYTES", max(block // 2, 1))
    a = write(tmp_path, "a.jsonl", "".join(line(f"a{i}", n="é" * i) for i in range(40)) + "\n")
    b = write(tmp_path, "b.jsonl", line("b0").replace("\n", "\r\n") + line("b1").rstrip())
    limits = Limits(max_requests_per_job=7, max_bytes_per_file=400)
    result = inputs.check_job_inputs([a, b], limits=limits)
    assert result.problems == []
    expected, _ = cut(sources.positioned([a.path, b.path]), 7, 400)
    assert result.shards == expected
    assert sum(s.requests for s in result.shards) == 42


def test_overlong_line_is_reported_and_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 16)
    monkeypatch.setattr(inputs, "MAX_LINE_BYTES", 100)
    content = line("a") + '{"body": {"x": "' + "y" * 200 + '"}}\n' + line("b") + "z" * 150
    (local,), problems = check_inputs([write(tmp_path, "in.jsonl", content)])
    assert local.lines == 4
    assert local.sha256 == hashlib.sha256(content.encode()).hexdigest()
    limit = "line is longer than 0 MB"
    assert messages(problems) == [f"in.jsonl:2:1: {limit}", f"in.jsonl:4:1: {limit}"]


def test_small_blocks_give_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    content = "".join(line(str(i % 7), n="é" * i) for i in range(30)) + "[]\n"
    spec = write(tmp_path, "in.jsonl", content)
    expected = check_inputs([spec], max_problems=100)
    monkeypatch.setattr(inputs, "BLOCK_BYTES", 7)
    assert check_inputs([spec], max_problems=100) == expected
    assert len(expected[1]) == 24


def test_special_files_are_refused(tmp_path: Path) -> None:
    _, problems = check_inputs([InputFile(tmp_path, "d", "d")])
    assert messages(problems) == ["d: is not a regular file"]
    _, problems = check_inputs([InputFile(tmp_path / "missing", "m", "m")])
    assert messages(problems) == ["m: cannot read: No such file or directory"]


def test_check_input_for_one_file(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(line("a"))
    local, problems = check_input(path)
    assert problems == []
    assert (local.path, local.lines) == ("one.jsonl", 1)


def test_problem_locations_are_file_line_column(tmp_path: Path) -> None:
    _, problems = check_inputs([write(tmp_path, "in.jsonl", '{"body": {"a": tru}}\n')])
    assert problems == [
        Problem(Location("in.jsonl", 1, 16), "", "invalid JSON: Expecting value"),
    ]


# -- the fast path never accepts what the reference decoder refuses ------------------------

_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


@st.composite
def near_json_lines(draw: st.DrawFn) -> bytes:
    """A valid request line, then perhaps mangled: bytes cut, inserted or replaced."""
    obj: dict[str, object] = {"body": draw(st.dictionaries(st.text(max_size=5), _json_value))}
    if draw(st.booleans()):
        obj["custom_id"] = draw(st.text(max_size=8) | st.integers())
    raw = bytearray(json.dumps(obj, ensure_ascii=draw(st.booleans())).encode())
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.sampled_from([*b'{}[]",:\\ \t0e-+.nNItfu', 0x00, 0x80, 0xE9]))
        if action == "insert":
            raw[i:i] = bytes([byte])
        elif raw and i < len(raw):
            raw[i : i + 1] = b"" if action == "delete" else bytes([byte])
    return bytes(raw).replace(b"\n", b"")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(near_json_lines())
def test_fast_path_and_reference_decoder_agree(raw: bytes) -> None:
    """Every line gets the verdict the standard library would give it alone."""
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, parse_constant=inputs._reject_constant)
        reference_ok = (
            not text.startswith("\ufeff")
            and isinstance(obj, dict)
            and isinstance(obj.get("body"), dict)
            and isinstance(obj.get("custom_id", ""), str | None)
        )
    except (UnicodeDecodeError, ValueError):
        reference_ok = False
    if not raw.strip():
        return
    with CustomIdIndex() as ids:
        scanner = inputs._Scanner([InputFile(Path("x"), "x", "x")], ids, 10, Limits())
        scanner.piece(0, raw + b"\n", 0, 0)
        problems = scanner.sinks[0].problems()
    if reference_ok:
        assert problems == [] or "appears twice" in problems[0].message
    else:
        assert problems != []


# -- memory ---------------------------------------------------------------------------------


def _peak(path: Path) -> int:
    tracemalloc.start()
    try:
        (_, problems) = check_inputs([InputFile(path, "x", "x")], max_ids_in_memory=2_000)
        assert problems == []
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _generate(path: Path, megabytes: int) -> None:
    template = line("id-%08d", q="why are my files not syncing? " * 20)
    with path.open("w") as out:
        i = 0
        while out.tell() < megabytes * 1024 * 1024:
            out.write("".join(template % (i + k) for k in range(1000)))
            i += 1000


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    """Peak Python allocations for 50 MB are not above those for 5 MB (ids spill to disk
    past 2,000; blocks are 1 MB)."""
    small, large = tmp_path / "small.jsonl", tmp_path / "large.jsonl"
    _generate(small, 5)
    _generate(large, 50)
    small_peak, large_peak = _peak(small), _peak(large)
    assert large_peak < small_peak * 1.25 + 256 * 1024, (small_peak, large_peak)
    assert large_peak < 8 * 1024 * 1024


def test_a_custom_id_named_twice_is_found_in_an_otherwise_valid_piece(tmp_path: Path) -> None:
    """The fast path (every line valid to msgspec, which keeps the last of two keys) still
    sends a line naming custom_id twice to the reference check."""
    content = line("a") + '{"custom_id": "q", "custom_id": "r", "body": {}}\n' + line("b")
    _, problems = check_inputs([write(tmp_path, "in.jsonl", content)])
    assert messages(problems) == ["in.jsonl:2:1: custom_id: appears twice on this line"]
