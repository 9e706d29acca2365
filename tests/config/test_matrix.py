"""Matrix expansion: GitHub Actions' documented semantics, order, and its errors."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.config.matrix import MAX_COMBINATIONS, MatrixError, expand


def values(matrix: dict[str, Any]) -> list[dict[str, Any]]:
    return [c.values() for c in expand(matrix)]


def test_the_product_varies_the_last_key_fastest() -> None:
    assert values({"model": ["s", "m"], "dataset": ["cheese", "wine"]}) == [
        {"model": "s", "dataset": "cheese"},
        {"model": "s", "dataset": "wine"},
        {"model": "m", "dataset": "cheese"},
        {"model": "m", "dataset": "wine"},
    ]


def test_include_as_github_documents_it() -> None:
    # The example of GitHub's "Expanding or adding matrix configurations", verbatim.
    matrix = {
        "fruit": ["apple", "pear"],
        "animal": ["cat", "dog"],
        "include": [
            {"color": "green"},
            {"color": "pink", "animal": "cat"},
            {"fruit": "apple", "shape": "circle"},
            {"fruit": "banana"},
            {"fruit": "banana", "animal": "cat"},
        ],
    }
    assert values(matrix) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_include_extends_only_the_matching_combination() -> None:
    matrix = {
        "os": ["windows-latest", "ubuntu-latest"],
        "node": [14, 16],
        "include": [{"os": "windows-latest", "node": 16, "npm": 6}],
    }
    assert [c.get("npm") for c in values(matrix)] == [None, 6, None, None]


def test_exclude_removes_partial_matches_before_include_adds_back() -> None:
    # GitHub's exclude example: 12 combinations, minus 1, minus 2.
    matrix = {
        "os": ["macos-latest", "windows-latest"],
        "version": [12, 14, 16],
        "environment": ["staging", "production"],
        "exclude": [
            {"os": "macos-latest", "version": 12, "environment": "production"},
            {"os": "windows-latest", "version": 16},
        ],
    }
    got = values(matrix)
    assert len(got) == 9
    assert {"os": "windows-latest", "version": 16, "environment": "staging"} not in got
    matrix["include"] = [{"os": "windows-latest", "version": 16, "environment": "staging"}]
    assert values(matrix)[-1] == {"os": "windows-latest", "version": 16, "environment": "staging"}


def test_exclude_matches_mapping_values_partially_and_numbers_by_json_equality() -> None:
    matrix = {
        "cfg": [{"model": "s", "t": 0.2}, {"model": "m", "t": 0.2}],
        "n": [1, 2],
        "exclude": [{"cfg": {"model": "m"}}, {"n": 2.0}],
    }
    assert values(matrix) == [{"cfg": {"model": "s", "t": 0.2}, "n": 1}]
    assert values({"x": [1, True], "exclude": [{"x": True}]}) == [{"x": 1}]


def test_a_matrix_of_include_only_is_its_entries() -> None:
    assert values({"include": [{"a": 1}, {"a": 2, "b": 3}]}) == [{"a": 1}, {"a": 2, "b": 3}]


def test_labels_name_the_combination() -> None:
    (combo,) = expand({"model": ["mistral-small-latest"], "t": [0.5], "cfg": [{"k": "v"}]})
    assert combo.label() == 'model=mistral-small-latest, t=0.5, cfg={"k":"v"}'


@pytest.mark.parametrize(
    ("matrix", "path", "message"),
    [
        ([1, 2], (), "must be a mapping"),
        ({}, (), "needs at least one key"),
        ({"model": "small"}, ("model",), r"must be a list of values \(write \[small\] for one\)"),
        ({"model": []}, ("model",), "must not be empty"),
        ({"bad key": [1]}, ("bad key",), "matrix keys start with a letter"),
        ({"m": [1], "exclude": {"m": 1}}, ("exclude",), "must be a list of mappings"),
        ({"m": [1], "exclude": [{}]}, ("exclude", 0), "must be a non-empty mapping"),
        ({"m": [1], "exclude": [{"x": 1}]}, ("exclude", 0, "x"), "'x' is not a key of the matrix"),
        ({"m": [1], "exclude": [{"m": 1}]}, (), "expands to no combination"),
        ({"a": list(range(101)), "b": list(range(100))}, (), "more than 10,000 combinations"),
    ],
)
def test_bad_matrices_say_where_and_why(matrix: Any, path: tuple[Any, ...], message: str) -> None:
    with pytest.raises(MatrixError) as caught:
        expand(matrix)
    (problem,) = caught.value.problems
    assert problem.path == path
    assert re.search(message, problem.message), problem.message


def test_a_huge_product_is_refused_without_being_built() -> None:
    # 20 keys of 10 values: 10**20 combinations; refused at once.
    with pytest.raises(MatrixError, match="more than"):
        expand({f"k{i}": list(range(10)) for i in range(20)})


# -- properties ------------------------------------------------------------------------

_scalar = st.one_of(st.integers(0, 3), st.sampled_from(["a", "b", "c"]), st.booleans())
_base = st.dictionaries(
    st.sampled_from(["x", "y", "z"]),
    st.lists(_scalar, min_size=1, max_size=3, unique_by=lambda v: (type(v), v)),
    min_size=1,
    max_size=3,
)


@given(_base)
def test_without_include_or_exclude_it_is_the_cartesian_product(base: dict[str, Any]) -> None:
    expected = [dict(zip(base, combo, strict=True)) for combo in itertools.product(*base.values())]
    assert values(base) == expected
    assert all(list(c) == list(base) for c in values(base))  # keys in matrix order


@given(_base, st.data())
def test_exclude_removes_exactly_the_combinations_it_matches(
    base: dict[str, Any], data: st.DataObject
) -> None:
    keys = data.draw(st.lists(st.sampled_from(list(base)), min_size=1, unique=True))
    entry = {k: data.draw(st.sampled_from(base[k])) for k in keys}
    everything = values(base)
    kept = [
        c
        for c in everything
        if not all(c[k] == v and type(c[k]) is type(v) for k, v in entry.items())
    ]
    if not kept:
        with pytest.raises(MatrixError, match="no combination"):
            expand({**base, "exclude": [entry]})
        return
    assert values({**base, "exclude": [entry]}) == kept


@given(_base, st.dictionaries(st.sampled_from(["x", "y", "w"]), _scalar, min_size=1, max_size=2))
def test_include_never_overwrites_an_original_value_and_is_deterministic(
    base: dict[str, Any], entry: dict[str, Any]
) -> None:
    matrix = {**base, "include": [entry]}
    got = values(matrix)
    assert got == values(matrix)  # deterministic
    originals = values(base)
    extended = got[: len(originals)]
    for original, combo in zip(originals, extended, strict=True):
        assert {k: combo[k] for k in original} == original  # originals never change
    assert len(got) in (len(originals), len(originals) + 1)
    if len(got) == len(originals) + 1:
        assert got[-1] == entry  # extended nothing: a combination of its own
    assert len(got) <= MAX_COMBINATIONS
