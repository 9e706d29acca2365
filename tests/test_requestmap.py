"""The per-request map of inline requests (``reconciler.request-map``): it always fits one
tag, reads back exactly, compares to the desired requests per custom_id and body field, and
anything that is not exactly its format reads as "no map" (tags are claims)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import api, requestmap
from reconciler.requestmap import RequestChange, RequestsDiff

SETTINGS = settings(max_examples=300, deadline=None)

ids = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=6)
values = st.one_of(st.integers(0, 3), st.text(max_size=3), st.lists(st.integers(0, 2), max_size=2))
bodies = st.dictionaries(
    st.sampled_from(["messages", "max_tokens", "temperature", "a;b=c"]), values
)


@st.composite
def request_lists(draw: st.DrawFn, max_size: int = 12) -> list[dict[str, Any]]:
    custom = draw(st.lists(ids, unique=True, max_size=max_size))
    out: list[dict[str, Any]] = [{"custom_id": c, "body": draw(bodies)} for c in custom]
    if draw(st.booleans()):
        out.append({"body": draw(bodies)})  # one without a custom_id: matched by position
    return out


@SETTINGS
@given(request_lists(max_size=80))
def test_the_map_fits_one_tag_and_reads_back_exactly(requests: list[dict[str, Any]]) -> None:
    text = requestmap.encode(requests)
    if text is None:
        return
    assert len(text) <= api.METADATA_VALUE_MAX
    decoded = requestmap.decode(text)
    assert decoded is not None
    assert decoded == requestmap.fingerprints(requests, decoded.level)


@SETTINGS
@given(request_lists())
def test_the_same_requests_show_no_change(requests: list[dict[str, Any]]) -> None:
    text = requestmap.encode(requests)
    if text is None:
        return
    old = requestmap.decode(text)
    assert old is not None
    d = requestmap.diff(old, requests)
    assert d.changes == () and d.total_changes == 0
    assert d.unchanged + d.unknown == len(requests)


@SETTINGS
@given(request_lists(), request_lists())
def test_the_diff_names_added_removed_and_changed_fields(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> None:
    text = requestmap.encode(before)
    if text is None:
        return
    old = requestmap.decode(text)
    assert old is not None
    d = requestmap.diff(old, after)
    key = {r.get("custom_id"): r["body"] for r in before if "custom_id" in r}
    new = {r.get("custom_id"): r["body"] for r in after if "custom_id" in r}
    by_kind: dict[str, set[str]] = {"added": set(), "removed": set(), "changed": set()}
    for change in d.changes:
        by_kind[change.kind].add(change.label)
    assert by_kind["added"] >= set(new) - set(key)
    assert by_kind["removed"] >= set(key) - set(new)
    assert d.added + d.removed + d.changed + d.unchanged + d.unknown >= len(set(key) | set(new))
    for change in d.changes:
        if change.kind == "changed" and change.label in key and change.label in new:
            fields = {f.removeprefix("body.") for f in change.fields}
            # A field reported changed really differs (a change may hide in a digest
            # collision, never appear from nothing).
            assert all(key[change.label].get(f) != new[change.label].get(f) for f in fields)
            assert key[change.label] != new[change.label]


def test_a_small_example_in_full() -> None:
    before = [
        {"custom_id": "0", "body": {"max_tokens": 5, "messages": [{"content": "a"}]}},
        {"custom_id": "1", "body": {"max_tokens": 5, "messages": [{"content": "b"}]}},
        {"custom_id": "2", "body": {"max_tokens": 5}},
    ]
    after = [
        {"custom_id": "0", "body": {"max_tokens": 5, "messages": [{"content": "a"}]}},
        {"custom_id": "1", "body": {"max_tokens": 6, "messages": [{"content": "B"}]}},
        {"custom_id": "3", "body": {"max_tokens": 5}},
    ]
    text = requestmap.encode(before)
    assert text is not None and text.startswith("f:max_tokens,messages;0=")
    old = requestmap.decode(text)
    assert old is not None
    assert requestmap.diff(old, after) == RequestsDiff(
        level="fields",
        added=1,
        removed=1,
        changed=1,
        unchanged=1,
        unknown=0,
        changes=(
            RequestChange("1", "changed", ("body.max_tokens", "body.messages")),
            RequestChange("2", "removed"),
            RequestChange("3", "added"),
        ),
    )


def test_less_detail_as_the_requests_grow_then_none() -> None:
    def levels(n: int) -> str | None:
        body = {"messages": "hi", "max_tokens": 5, "temperature": 0}
        text = requestmap.encode([{"custom_id": str(i), "body": body} for i in range(n)])
        return None if text is None else text[:2]

    assert levels(10) == "f:"  # three field digests a request
    assert levels(50) == "b:"  # one digest a request
    assert levels(150) == "i:"
    assert levels(400) is None
    ids_only = requestmap.decode(requestmap.encode([{"custom_id": str(i)} for i in range(150)]))
    assert ids_only is not None
    d = requestmap.diff(ids_only, [{"custom_id": str(i)} for i in range(1, 151)])
    assert (d.added, d.removed, d.changed, d.unknown) == (1, 1, 0, 149)


@SETTINGS
@given(st.text(max_size=80) | st.sampled_from(["f:", "b:x=abc", "i:", "f:a,a;0=......", "i:!;!"]))
def test_anything_else_reads_as_no_map(text: str) -> None:
    found = requestmap.decode(text)  # never raises
    if found is not None:
        assert requestmap.decode(requestmap._write(found)) == found
    assert requestmap.decode("f:a,a;0=AAABBB") is None  # a key twice
    assert requestmap.decode("i:x;x") is None  # a custom_id twice
    assert requestmap.decode("b:0=AA") is None  # a digest too short
    assert requestmap.decode(7) is None


@SETTINGS
@given(request_lists(), request_lists())
def test_a_diff_survives_json(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    text = requestmap.encode(before)
    if text is None:
        return
    old = requestmap.decode(text)
    assert old is not None
    d = requestmap.diff(old, after)
    assert requestmap.from_json(requestmap.to_json(d)) == d
