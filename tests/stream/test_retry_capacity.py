"""reconciler.stream.retry and .capacity: pure decisions over plain data."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.stream.capacity import admit
from reconciler.stream.model import Failure
from reconciler.stream.retry import Finished, is_retryable, outcome

_codes = st.sampled_from([None, 400, 401, 404, 408, 413, 422, 429, 500, 502, 503])


@st.composite
def finished_units(draw: st.DrawFn) -> tuple[Finished, dict[str, str]]:
    """A unit of n requests; each succeeded, failed (with a code), or got no result."""
    n = draw(st.integers(0, 30))
    ids = [f"r{i}" for i in range(n)]
    status = draw(st.sampled_from(["SUCCESS", "FAILED", "TIMEOUT_EXCEEDED", "CANCELLED"]))
    truth: dict[str, str] = {}
    failures: list[Failure] = []
    answered: set[str] = set()
    for cid in ids:
        fate = draw(
            st.sampled_from(["ok", "fail"] if status == "SUCCESS" else ["ok", "fail", "none"])
        )
        if fate == "fail":
            code = draw(_codes)
            failures.append(Failure(cid, code))
            truth[cid] = "retryable" if is_retryable(code) else "final"
            answered.add(cid)
        elif fate == "ok":
            truth[cid] = "succeeded"
            answered.add(cid)
        else:
            truth[cid] = "retryable"
    attempt = draw(st.integers(1, 4))
    unit = Finished(
        status, n, attempt, failures, None if status == "SUCCESS" else frozenset(answered)
    )
    return unit, truth


@settings(max_examples=400)
@given(finished_units(), st.integers(1, 5))
def test_a_retry_set_never_holds_a_succeeded_or_final_failed_request(
    case: tuple[Finished, dict[str, str]], max_attempts: int
) -> None:
    unit, truth = case
    result = outcome(unit, max_attempts)
    chosen = {cid for cid in truth if result.retry is not None and cid in result.retry}
    assert all(truth[cid] == "retryable" for cid in chosen)
    if result.retry is not None:
        assert chosen == {cid for cid, fate in truth.items() if fate == "retryable"}
        assert result.retry.requests == len(chosen)
    assert result.succeeded == sum(f == "succeeded" for f in truth.values())
    assert result.final_4xx == sum(f == "final" for f in truth.values())
    assert result.retryable == sum(f == "retryable" for f in truth.values())


@settings(max_examples=200)
@given(finished_units(), st.integers(1, 5))
def test_attempts_never_exceed_max_attempts(
    case: tuple[Finished, dict[str, str]], max_attempts: int
) -> None:
    unit, _ = case
    result = outcome(unit, max_attempts)
    if result.retry is not None:
        assert result.next_attempt <= max_attempts
    else:
        assert unit.attempt >= max_attempts or result.retryable == 0
    if unit.attempt >= max_attempts:
        assert result.exhausted == result.retryable


def test_retryable_codes() -> None:
    assert [c for c in (None, 400, 404, 408, 422, 429, 500, 503) if is_retryable(c)] == [
        None,
        408,
        429,
        500,
        503,
    ]


def test_the_last_failure_of_a_request_counts() -> None:
    failures = [Failure("a", 500), Failure("a", 400), Failure("b", 400), Failure("b", 429)]
    result = outcome(Finished("SUCCESS", 3, 1, failures), 3)
    assert result.retry is not None and sorted(result.retry.ids) == ["b"]
    assert [f.custom_id for f in result.final_failures] == ["a"]
    assert (result.succeeded, result.retryable, result.final_4xx) == (1, 1, 1)


def test_a_job_cancelled_before_answering_anything_is_retried_whole() -> None:
    result = outcome(Finished("CANCELLED", 5, 1, [], answered=None), 2)
    assert result.retry is not None
    assert result.retry.complement and result.retry.requests == 5
    assert "anything" in result.retry and None not in result.retry
    assert result.unanswered == 5


def test_an_unfinished_unit_is_refused() -> None:
    with pytest.raises(ValueError):
        outcome(Finished("RUNNING", 1, 1, []), 2)


# -- capacity -------------------------------------------------------------------------------


@settings(max_examples=300)
@given(
    st.integers(0, 50),
    st.integers(1, 60),
    st.lists(st.integers(1, 40), max_size=12),
)
def test_admission_is_first_come_first_served_within_the_cap(
    pending: int, limit: int, sizes: list[int]
) -> None:
    creates = list(enumerate(sizes))
    result = admit(pending, limit, creates)
    now = list(result.now)
    assert now + list(result.deferred) == [k for k, _ in creates]  # order kept, none lost
    assert now == list(range(len(now)))  # a prefix: nothing jumps the queue
    total = pending + sum(sizes[k] for k in now)
    assert result.pending == total
    assert total <= max(limit, pending)
    if result.deferred:
        first = result.deferred[0]
        assert sizes[first] > limit or total + sizes[first] > limit
    assert {t.key for t in result.too_large} == {k for k, n in creates if n > limit}


def test_a_shard_larger_than_the_cap_is_named_with_the_limit() -> None:
    result = admit(0, 1_000, [("big/shard-0", 1_500), ("small", 10)])
    assert result.now == () and result.deferred == ("big/shard-0", "small")
    (too_large,) = result.too_large
    assert str(too_large) == (
        "big/shard-0: 1,500 requests is more than max_pending_requests (1,000);"
        " lower limits.max_requests_per_job so that shards fit"
    )
    assert admit(400, 1_000, [("a", 600), ("b", 1)]).waiting_message() == (
        "waiting for capacity (1,000 pending of 1,000)"
    )
