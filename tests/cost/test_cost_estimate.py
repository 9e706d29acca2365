"""The estimator per endpoint, with a counter of one token per word so that every expected
number can be worked out by hand (REQUEST_OVERHEAD 1, MESSAGE_OVERHEAD 2, …)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cost.helpers import ExactWordCounter, WordCounter, chat, line, lines
from reconciler import api
from reconciler.cost.estimate import (
    DEFAULT_OUTPUT_TOKENS,
    ENDPOINT_KINDS,
    FIM_OVERHEAD,
    IMAGE_TOKENS,
    MESSAGE_OVERHEAD,
    REQUEST_OVERHEAD,
    TOOLS_OVERHEAD,
    Estimate,
    estimate_bodies,
    estimate_lines,
    page_count,
)
from reconciler.cost.heuristic import HeuristicCounter

WORDS = WordCounter()
CHAT = "/v1/chat/completions"


def est(endpoint: str, *bodies: Any, counter: Any = WORDS, **kw: Any) -> Estimate:
    return estimate_lines(lines(bodies), endpoint, counter, **kw)


def test_every_endpoint_of_the_api_has_a_rule() -> None:
    assert set(ENDPOINT_KINDS) == set(api.ENDPOINTS)
    with pytest.raises(ValueError, match="unknown endpoint '/v1/nope'"):
        estimate_lines([], "/v1/nope", WORDS)


def test_chat_counts_contents_overheads_and_max_tokens() -> None:
    e = est(CHAT, chat("what is the best cheese", max_tokens=300))
    assert e == Estimate(
        requests=1,
        input_tokens=REQUEST_OVERHEAD + MESSAGE_OVERHEAD + 5,
        output_tokens=300,
        method="heuristic",
    )
    two = est(CHAT, chat("a b", "c", "d e f", max_tokens=10), chat("x", max_tokens=0))
    assert two.requests == 2
    assert two.input_tokens == (1 + 3 * 2 + 6) + (1 + 2 + 1)
    assert two.output_tokens == 10
    assert two.unbounded == 0


def test_a_request_without_max_tokens_is_unbounded_and_counted_at_the_default() -> None:
    e = est(CHAT, chat("hi", max_tokens=None), chat("hi", max_tokens=5))
    assert (e.output_tokens, e.unbounded) == (DEFAULT_OUTPUT_TOKENS + 5, 1)
    custom = est(CHAT, chat("hi", max_tokens=None), default_output_tokens=7)
    assert (custom.output_tokens, custom.unbounded) == (7, 1)
    for bad in ("100", -1, True, 1.5, None):
        e = est(CHAT, {"messages": [{"role": "user", "content": "hi"}], "max_tokens": bad})
        assert e.unbounded == 1, bad


def test_n_completions_multiply_the_output() -> None:
    assert est(CHAT, chat("hi", max_tokens=50, n=3)).output_tokens == 150
    assert est(CHAT, chat("hi", max_tokens=None, n=2)).output_tokens == 2 * DEFAULT_OUTPUT_TOKENS
    assert est(CHAT, chat("hi", max_tokens=50, n=0)).output_tokens == 50  # invalid n: one


def test_content_arrays_count_their_text_parts_and_images_at_a_stated_bound() -> None:
    body = {
        "max_tokens": 1,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe this picture"},
                    {"type": "image_url", "image_url": "https://example.com/a.png"},
                    {"type": "text", "text": "briefly"},
                ],
            }
        ],
    }
    e = est(CHAT, body)
    assert e.images == 1
    assert e.input_tokens == 1 + 2 + 4 + IMAGE_TOKENS
    assert e.unknown == 0


def test_audio_and_document_parts_make_the_request_cost_unknown() -> None:
    for kind in ("input_audio", "document_url"):
        body = {"messages": [{"role": "user", "content": [{"type": kind, kind: "x"}]}]}
        assert est(CHAT, body).unknown == 1


def test_tool_definitions_calls_and_results_are_input() -> None:
    tools = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]
    body = {
        "max_tokens": 5,
        "tools": tools,
        "messages": [
            {"role": "user", "content": "weather in Paris"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "call1",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call1", "name": "weather", "content": "sunny 21C"},
        ],
    }
    e = est(CHAT, body)
    tools_words = len(json.dumps(tools, separators=(",", ":")).split())
    call_words = 1 + 2  # "weather", '{"city": "Paris"}'
    tool_words = 2 + 1 + 1  # "sunny 21C", tool_call_id, name
    expected = 1 + 3 * 2 + 3 + call_words + tool_words + TOOLS_OVERHEAD + tools_words
    assert e.input_tokens == expected


def test_conversations_count_instructions_inputs_and_completion_args() -> None:
    body = {
        "instructions": "answer in French",
        "inputs": [
            {"type": "message.input", "role": "user", "content": "hello there"},
            {"type": "message.output", "role": "assistant", "content": "bonjour"},
            {"type": "message.input", "role": "user", "content": "and goodbye"},
        ],
        "completion_args": {"max_tokens": 40},
    }
    e = est("/v1/conversations", body, {"inputs": "one two three"})
    assert e.requests == 2
    assert e.input_tokens == (1 + 4 * 2 + 3 + 2 + 1 + 2) + (1 + 2 + 3)
    assert e.output_tokens == 40 + DEFAULT_OUTPUT_TOKENS  # the second has no completion_args
    assert e.unbounded == 1


def test_conversation_connectors_make_the_cost_unknown() -> None:
    body = {"inputs": "latest news", "tools": [{"type": "web_search"}]}
    assert est("/v1/conversations", body).unknown == 1
    functions = {"inputs": "x", "tools": [{"type": "function", "function": {"name": "f"}}]}
    assert est("/v1/conversations", functions).unknown == 0


def test_fim_counts_prompt_and_suffix() -> None:
    e = est(
        "/v1/fim/completions", {"prompt": "def add(a, b):", "suffix": "return c", "max_tokens": 64}
    )
    assert (e.input_tokens, e.output_tokens) == (FIM_OVERHEAD + 3 + 2, 64)
    exact = est(
        "/v1/fim/completions", {"prompt": "a b", "max_tokens": 1}, counter=ExactWordCounter()
    )
    assert (exact.input_tokens, exact.method) == (22, "exact")


@pytest.mark.parametrize("endpoint", ["/v1/embeddings", "/v1/moderations", "/v1/classifications"])
def test_embeddings_and_moderation_count_their_inputs_and_have_no_output(endpoint: str) -> None:
    e = est(
        endpoint, {"input": "one two"}, {"input": ["three", "four five six"]}, {"input": [1, 2, 3]}
    )
    assert (e.requests, e.input_tokens, e.output_tokens, e.unbounded) == (3, 2 + 4 + 3, 0, 0)
    assert est(endpoint, {"inputs": ["a b"]}).input_tokens == 2  # the SDK's spelling


@pytest.mark.parametrize("endpoint", ["/v1/chat/moderations", "/v1/chat/classifications"])
def test_chat_moderation_counts_each_conversation(endpoint: str) -> None:
    convo = [{"role": "user", "content": "is this ok"}, {"role": "assistant", "content": "yes"}]
    one = est(endpoint, {"input": convo})
    assert one.input_tokens == 1 + 2 * 2 + 4
    many = est(endpoint, {"input": [convo, convo]})
    assert many.input_tokens == 2 * one.input_tokens
    wrapped = est(endpoint, {"input": {"messages": convo}})
    assert wrapped.input_tokens == one.input_tokens
    assert (one.output_tokens, one.unbounded) == (0, 0)


def test_ocr_counts_known_pages_and_flags_the_rest() -> None:
    doc = {"type": "document_url", "document_url": "https://example.com/a.pdf"}
    e = est(
        "/v1/ocr",
        {"document": doc, "pages": [0, 1, 2]},
        {"document": doc, "pages": "0-9"},
        {"document": {"type": "image_url", "image_url": "https://example.com/p.png"}},
        {"document": {"image_url": "https://example.com/p.png"}},  # no type: allowed by the API
        {"document": doc},
        {"document": doc, "pages": [0, 1], "document_annotation_format": {"type": "json_schema"}},
    )
    assert (e.requests, e.pages, e.annotated_pages, e.unknown) == (6, 3 + 10 + 1 + 1, 2, 1)
    assert (e.input_tokens, e.output_tokens) == (0, 0)
    assert e.total_pages == 17


def test_page_count_reads_numbers_ranges_and_lists_as_a_union() -> None:
    assert page_count(None) is None
    assert page_count(4) == 1
    assert page_count("3") == 1
    assert page_count("2-5") == 4
    assert page_count([0, "0-3", 2, "10-11"]) == 6
    assert page_count([]) == 0
    assert page_count("0-999999999999") == 1_000_000_000_000  # counted, not expanded
    for bad in (-1, "5-2", "a", [0, None], True, 1.5, "1-", {"a": 1}):
        assert page_count(bad) is None, bad


def test_transcriptions_are_counted_but_their_cost_is_unknown() -> None:
    e = est("/v1/audio/transcriptions", {"file_url": "https://example.com/a.mp3"}, {})
    assert (e.requests, e.unknown, e.input_tokens, e.output_tokens) == (2, 2, 0, 0)


def test_blank_lines_are_not_requests_and_broken_lines_are_unknown() -> None:
    stream = [line(chat("hi")), b"\n", b"   \n", b"not json\n", b'{"body": 3}\n', b"[1]\n"]
    e = estimate_lines(stream, CHAT, WORDS)
    assert (e.requests, e.unknown) == (4, 3)


def test_an_exact_counter_uses_the_template_unless_it_refuses() -> None:
    exact = ExactWordCounter()
    ok = est(CHAT, chat("a b c"), counter=exact)
    assert (ok.input_tokens, ok.method) == (13, "exact")
    # Ends with an assistant message: refused, counted from the text, and not exact.
    refused = est(CHAT, chat("a b", "c"), counter=exact)
    assert (refused.input_tokens, refused.method) == (1 + 2 * 2 + 3, "heuristic")
    # An image part cannot be tokenized offline: the whole request is estimated.
    image = {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}]}
    assert est(CHAT, image, counter=exact).method == "heuristic"
    assert (ok + refused).method == "heuristic"


def test_lines_and_decoded_bodies_give_the_same_estimate() -> None:
    bodies = [chat("a b"), chat("c", max_tokens=None), {"messages": "junk"}, 7]
    assert estimate_bodies(bodies, CHAT, WORDS) == estimate_lines(lines(bodies), CHAT, WORDS)


def test_the_heuristic_counter_is_deterministic_and_positive() -> None:
    h = HeuristicCounter()
    assert h.count_text("") == 0
    assert h.count_text("a") == 1
    assert h.count_text("Hello world, how are you?") == h.count_text("Hello world, how are you?")
    assert h.count_text("x" * 4000) > h.count_text("x" * 400) > 0
    assert h.count_text("\udc80 lone surrogate") > 0  # JSON can carry one; never raises
