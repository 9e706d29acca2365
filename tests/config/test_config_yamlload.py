"""Safe YAML loading: plain values, positions, and hostile documents refused quickly."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from reconciler.config import yamlload
from reconciler.config.yamlload import format_path, parse_file, parse_text
from reconciler.errors import Location

PARSERS = pytest.mark.parametrize("pure", [False, True], ids=["libyaml", "python"])


@PARSERS
def test_values_are_json_like(pure: bool) -> None:
    result = parse_text(
        "a: 1\nb: [x, {c: yes}]\nd: 2024-01-01\n123: z\ne: ~\nf: 1.5\ng: !!str 7\n",
        "f.yaml",
        pure=pure,
    )
    assert result.problems == []
    assert result.doc is not None
    assert result.doc.value == {
        "a": 1,
        "b": ["x", {"c": True}],
        "d": "2024-01-01",  # JSON has no dates: the text as written
        "123": "z",  # keys are their source text
        "e": None,
        "f": 1.5,
        "g": "7",
    }


@PARSERS
def test_positions(pure: bool) -> None:
    result = parse_text("jobs:\n  a:\n    model: x\n    list: [1, 2]\n", "f.yaml", pure=pure)
    doc = result.doc
    assert doc is not None
    assert doc.locate(("jobs", "a", "model")) == Location("f.yaml", 3, 12)
    assert doc.locate_key(("jobs", "a", "model")) == Location("f.yaml", 3, 5)
    assert doc.locate(("jobs", "a", "list", 1)) == Location("f.yaml", 4, 15)
    # A path that does not exist: its deepest existing parent.
    assert doc.locate(("jobs", "a", "nope", 3)) == Location("f.yaml", 3, 5)
    assert doc.locate_key(("jobs", "b")) == Location("f.yaml", 2, 3)
    assert doc.scalar_text(("jobs", "a", "list", 0)) == "1"


@PARSERS
def test_merge_keys_and_their_positions(pure: bool) -> None:
    text = "x-base: &b {k: 1, m: 2}\nj:\n  <<: *b\n  m: 3\n"
    result = parse_text(text, "f.yaml", pure=pure)
    assert result.doc is not None
    assert result.doc.value["j"] == {"k": 1, "m": 3}
    assert result.doc.locate(("j", "k")) == Location("f.yaml", 1, 16)
    assert result.doc.locate(("j", "m")) == Location("f.yaml", 4, 6)


@PARSERS
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: 1\na: 2\n",
            "f.yaml:2:1: a: duplicate key 'a' (first at line 1); YAML keeps only one of them",
        ),
        (
            "a: !!python/name:os.system x\n",
            "f.yaml:1:4: a: unsupported YAML tag !!python/name:os.system",
        ),
        ("a: !!binary aGVsbG8=\n", "f.yaml:1:4: a: unsupported YAML tag !!binary"),
        ("a: !!set {x}\n", "f.yaml:1:4: a: unsupported YAML tag !!set"),
        ("a: !custom x\n", "f.yaml:1:4: a: unsupported YAML tag !custom"),
        ("a: .inf\n", "f.yaml:1:4: a: must be a finite number (JSON has no NaN or infinity)"),
        ("? [k]\n: v\n", "f.yaml:1:3: mapping keys must be plain strings"),
        ("a: &x [*x]\n", "f.yaml:1:4: an alias refers to a value that contains it"),
        ("a: &x {<<: *x}\n", "f.yaml:1:4: an alias refers to a value that contains it"),
        ("a: *nope\n", "f.yaml:1:4: invalid YAML: found undefined alias 'nope'"),
        (
            "a: [\n",
            "f.yaml:2:1: invalid YAML: did not find expected node content"
            " (while parsing a flow node at line 2)",
        ),
    ],
)
def test_refused_documents(pure: bool, text: str, expected: str) -> None:
    result = parse_text(text, "f.yaml", pure=pure)
    messages = [str(p) for p in result.problems]
    if pure and "did not find expected node content" in expected:
        # PyYAML's Python parser words this one differently; the position is the same.
        assert messages[0].startswith("f.yaml:2:1: invalid YAML:")
    else:
        assert messages == [expected]


@PARSERS
def test_empty_documents(pure: bool) -> None:
    for text in ("", "# only a comment\n", "---\n"):
        result = parse_text(text, "f.yaml", pure=pure)
        assert (result.doc, result.problems, result.empty) == (None, [], True)


def _billion_laughs(levels: int) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@PARSERS
def test_alias_bomb_is_refused_quickly_in_little_memory(pure: bool) -> None:
    text = _billion_laughs(10)  # 9**10 = 3.5 billion strings if expanded
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = parse_text(text, "bomb.yaml", pure=pure)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 10  # generous: it takes well under a second
    assert peak < 64 * 1024 * 1024
    assert result.doc is None
    (problem,) = result.problems
    assert "aliases expand to more than 100,000 values (an alias bomb?)" in problem.message
    assert problem.location.line == 6  # l5 is where the budget runs out


@PARSERS
def test_reasonable_alias_reuse_is_fine(pure: bool) -> None:
    text = "x-body: &b {messages: [{role: user, content: hi}]}\nrequests:\n"
    text += "".join(f"  - {{custom_id: '{i}', body: *b}}\n" for i in range(2000))
    result = parse_text(text, "f.yaml", pure=pure)
    assert result.problems == []
    assert result.doc is not None
    assert len(result.doc.value["requests"]) == 2000


@PARSERS
@pytest.mark.parametrize("depth", [70, 5000])
def test_deep_nesting_is_refused(pure: bool, depth: int) -> None:
    result = parse_text("a: " + "[" * depth + "]" * depth + "\n", "f.yaml", pure=pure)
    assert result.doc is None
    (problem,) = result.problems
    assert "nesting deeper than" in problem.message or "nesting depth" in problem.message


def test_nesting_at_the_limit_is_fine() -> None:
    depth = yamlload.MAX_DEPTH - 1
    result = parse_text("[" * depth + "]" * depth, "f.yaml")
    assert result.problems == []


def test_deep_nesting_through_aliases_is_refused() -> None:
    lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}]" for i in range(1, 80)]
    result = parse_text("\n".join(lines) + "\n", "f.yaml")
    assert result.doc is None
    assert "nesting deeper than 64 levels" in result.problems[0].message


def test_file_size_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 2000 + "\n")
    result = parse_file(path, "big.yaml", max_bytes=1000)
    assert [str(p) for p in result.problems] == [
        "big.yaml: file is larger than 0 MB; move large request lists into a JSONL file"
        " named under inputs:"
    ]


def test_default_size_limit_is_16_mb() -> None:
    assert yamlload.MAX_YAML_BYTES == 16 * 1024 * 1024


def test_utf8_bom_is_accepted_and_latin1_is_located(tmp_path: Path) -> None:
    ok = tmp_path / "bom.yaml"
    ok.write_bytes(b"\xef\xbb\xbfa: 1\n")
    assert parse_file(ok, "bom.yaml").doc is not None
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("a: 1\nb: 'crème'\n".encode("latin-1"))
    assert [str(p) for p in parse_file(bad, "latin1.yaml").problems] == [
        "latin1.yaml:2:7: not valid UTF-8 (byte 0xe8); save as UTF-8"
    ]


def test_format_path() -> None:
    assert format_path(("jobs", "x.y", "requests", 3, "body")) == "jobs.x.y.requests[3].body"
    assert format_path(()) == ""


@PARSERS
def test_lone_surrogate_escapes_are_refused(pure: bool) -> None:
    result = parse_text('a: "x\\ud800"\n', "f.yaml", pure=pure)
    assert result.problems
    assert result.problems[0].location == Location("f.yaml", 1, 8 if not pure else 4)
