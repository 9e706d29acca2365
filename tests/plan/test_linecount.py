"""Lines an input file gained and lost: a multiset of line digests, written in any chunks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.plan.linecount import LineDigests, TooLarge, added_removed, with_line_counts
from reconciler.plan.model import Action, Change, FieldDiff, Plan, Reason

lines = st.lists(st.sampled_from([b'{"a":1}', b'{"a":2}', b'{"b":3}', b"", b"  "]), max_size=20)


def digest(data: bytes, cuts: list[int]) -> LineDigests:
    sink = LineDigests(limit=1 << 20)
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        sink.write(data[start:cut])
        start = max(start, cut)
    sink.write(data[start:])
    return sink


@given(lines, lines, st.lists(st.integers(0, 400), max_size=6), st.booleans())
def test_counts_are_the_multiset_difference_whatever_the_chunks(
    old: list[bytes], new: list[bytes], cuts: list[int], crlf: bool
) -> None:
    end = b"\r\n" if crlf else b"\n"
    a = digest(end.join(old), cuts).finish()
    b = digest(end.join(new) + end, cuts[::-1]).finish()
    kept_old = [x for x in old if x.strip()]
    kept_new = [x for x in new if x.strip()]
    added, removed = added_removed(a, b)
    common = sum(min(kept_old.count(x), kept_new.count(x)) for x in set(kept_old))
    assert (added, removed) == (len(kept_new) - common, len(kept_old) - common)


def test_a_file_over_the_limit_is_not_counted() -> None:
    sink = LineDigests(limit=10)
    sink.write(b"0123456789")
    with pytest.raises(TooLarge):
        sink.write(b"\n")


def test_counts_land_on_the_named_diffs_only() -> None:
    diffs = (FieldDiff("model", "a", "b"), FieldDiff("inputs[0]", "x@1", "x@2"))
    p = Plan(
        "ws", changes=(Change(Action.CREATE, "cheese-eval", Reason.SPEC_CHANGED, diffs=diffs),)
    )
    counted = with_line_counts(p, {("cheese-eval", "inputs[0]"): (3, 1)})
    (diff,) = [d for c in counted.changes for d in c.diffs if d.path == "inputs[0]"]
    assert diff.lines == (3, 1)
    assert sum(d.lines is not None for c in counted.changes for d in c.diffs) == 1
    assert with_line_counts(p, {}) is p
