"""Invariants of the estimator and of Estimate arithmetic (Hypothesis).

The one the planner relies on: estimates add up. A job's estimate is the sum of its
shards' whatever the cut, and a retry subset plus the rest is the whole, so the shell can
estimate once per shard or retry and add."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cost.helpers import line
from reconciler import api
from reconciler.cost.estimate import Estimate, estimate_bodies, estimate_lines, page_count
from reconciler.cost.heuristic import HeuristicCounter

COUNTER = HeuristicCounter()
texts = st.text(max_size=60)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
parts = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, texts),
    st.just({"type": "image_url", "image_url": "https://example.com/a.png"}),
    st.just({"type": "input_audio", "input_audio": "AAAA"}),
)
messages = st.builds(
    lambda role, content: {"role": role, "content": content},
    st.sampled_from(["system", "user", "assistant", "tool"]),
    texts | st.lists(parts, max_size=3),
)
chat_bodies = st.builds(
    lambda msgs, limit, n: {
        "messages": msgs,
        **({"max_tokens": limit} if limit is not None else {}),
        **({"n": n} if n is not None else {}),
    },
    st.lists(messages, min_size=1, max_size=4),
    st.none() | st.integers(0, 4096),
    st.none() | st.integers(1, 3),
)
bodies = st.one_of(
    chat_bodies,
    st.builds(lambda x: {"input": x}, texts | st.lists(texts, max_size=3)),
    st.builds(lambda p: {"document": {"document_url": "u"}, "pages": p}, json_values),
    st.dictionaries(texts, json_values, max_size=4),
    json_values,
)
endpoints = st.sampled_from(api.ENDPOINTS)
estimates = st.builds(
    Estimate,
    requests=st.integers(0, 10**6),
    input_tokens=st.integers(0, 10**9),
    output_tokens=st.integers(0, 10**9),
    unbounded=st.integers(0, 10**6),
    unknown=st.integers(0, 10**6),
    method=st.sampled_from(["exact", "heuristic"]),
    pages=st.integers(0, 10**6),
    annotated_pages=st.integers(0, 10**6),
    images=st.integers(0, 10**6),
)


@settings(max_examples=150, deadline=None)
@given(endpoints, st.lists(bodies, max_size=12), st.data())
def test_an_estimate_is_the_sum_of_its_shards_whatever_the_cut(
    endpoint: str, requests: list[Any], data: st.DataObject
) -> None:
    stream = [line(b, str(i)) for i, b in enumerate(requests)]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=4)))
    bounds = [0, *cuts, len(stream)]
    shards = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    whole = estimate_lines(stream, endpoint, COUNTER)
    assert Estimate.total(estimate_lines(s, endpoint, COUNTER) for s in shards) == whole
    assert whole.requests == len(stream)


@settings(max_examples=100, deadline=None)
@given(endpoints, st.lists(bodies, max_size=12), st.data())
def test_a_retry_subset_and_the_rest_make_the_whole(
    endpoint: str, requests: list[Any], data: st.DataObject
) -> None:
    stream = [line(b, str(i)) for i, b in enumerate(requests)]
    retry = data.draw(st.sets(st.integers(0, max(0, len(stream) - 1)), max_size=len(stream)))
    retried = [x for i, x in enumerate(stream) if i in retry]
    rest = [x for i, x in enumerate(stream) if i not in retry]
    assert estimate_lines(retried, endpoint, COUNTER) + estimate_lines(
        rest, endpoint, COUNTER
    ) == estimate_lines(stream, endpoint, COUNTER)


@settings(max_examples=100, deadline=None)
@given(endpoints, st.lists(bodies, max_size=10), st.randoms(use_true_random=False))
def test_the_order_of_requests_does_not_matter(
    endpoint: str, requests: list[Any], rnd: Any
) -> None:
    stream = [line(b, str(i)) for i, b in enumerate(requests)]
    shuffled = list(stream)
    rnd.shuffle(shuffled)
    assert estimate_lines(shuffled, endpoint, COUNTER) == estimate_lines(stream, endpoint, COUNTER)


@settings(max_examples=150, deadline=None)
@given(endpoints, st.lists(bodies, max_size=8))
def test_any_body_is_estimated_without_error_and_counts_are_sane(
    endpoint: str, requests: list[Any]
) -> None:
    e = estimate_bodies(requests, endpoint, COUNTER)
    assert e.requests == len(requests)
    assert min(e.input_tokens, e.output_tokens, e.pages, e.annotated_pages, e.images) >= 0
    assert e.unbounded <= e.requests and e.unknown <= e.requests
    # A heuristic counter never yields an exact estimate, except where no token is
    # counted at all (OCR counts pages, transcription nothing).
    no_tokens = endpoint in ("/v1/ocr", "/v1/audio/transcriptions")
    assert e.method == "heuristic" or e.requests == 0 or no_tokens
    assert estimate_lines([line(b) for b in requests], endpoint, COUNTER) == e


@given(estimates, estimates, estimates)
def test_estimates_add_like_numbers(a: Estimate, b: Estimate, c: Estimate) -> None:
    assert a + b == b + a
    assert (a + b) + c == a + (b + c)
    assert a + Estimate() == a == Estimate.total([a])
    assert (a + b).method == ("exact" if a.method == b.method == "exact" else "heuristic")
    assert (a + b).requests == a.requests + b.requests


@given(st.lists(st.one_of(st.integers(0, 60), st.tuples(st.integers(0, 60), st.integers(0, 60)))))
def test_page_count_is_the_number_of_distinct_pages(items: list[Any]) -> None:
    spec: list[int | str] = []
    pages: set[int] = set()
    for item in items:
        if isinstance(item, int):
            spec.append(item)
            pages.add(item)
        else:
            a, b = sorted(item)
            spec.append(f"{a}-{b}")
            pages.update(range(a, b + 1))
    assert page_count(spec) == len(pages)


@given(texts, texts)
def test_heuristic_counts_grow_with_the_text(a: str, b: str) -> None:
    count = COUNTER.count_text
    assert count(a + b) >= 0
    assert (count(a) == 0) == (a == "")
    # Rounding can lose a token per piece, never more.
    assert count(a + b) <= count(a) + count(b) + 1
    assert count(a + b) >= max(count(a), count(b)) - 1
