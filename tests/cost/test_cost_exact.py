"""Exact counts with Mistral's own tokenizers (the ``[tokenizer]`` extra, mistral-common).

Skipped, saying so, when mistral-common is not installed; the ``test`` extra installs it,
so CI runs these. The autouse ``no_network`` fixture fails any test that connects:
tokenizers come from the files inside the package.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import pytest

from cost.helpers import chat, lines
from reconciler.cost import tokenizers
from reconciler.cost.budget import CostItem, estimate_plan_cost
from reconciler.cost.estimate import REQUEST_OVERHEAD, estimate_lines
from reconciler.cost.heuristic import HeuristicCounter
from reconciler.cost.prices import shipped_table

HAVE_MISTRAL_COMMON = importlib.util.find_spec("mistral_common") is not None
needs_extra = pytest.mark.skipif(
    not HAVE_MISTRAL_COMMON,
    reason="mistral-common is not installed: pip install -e '.[tokenizer]' to test exact counts",
)
CHAT = "/v1/chat/completions"


def reference(file_name: str, messages: list[dict[str, Any]], tools: Any = None) -> int:
    """mistral-common's own count, called directly, as a user of it would."""
    from importlib import resources

    from mistral_common.protocol.instruct.request import ChatCompletionRequest
    from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

    path = resources.files("mistral_common") / "data" / file_name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tokenizer = MistralTokenizer.from_file(str(path))
    request: Any = ChatCompletionRequest.model_validate({"messages": messages, "tools": tools})
    return len(tokenizer.encode_chat_completion(request).tokens)


BODIES = [
    chat("What is the best French cheese?"),
    {
        "max_tokens": 50,
        "messages": [
            {"role": "system", "content": "You triage support tickets. Answer in one line."},
            {
                "role": "user",
                "content": "Ticket 81: l'export nocturne est vide depuis la mise à jour.",
            },
        ],
    },
    chat("Erzähl mir einen Witz.", "Warum …", "Noch einen, bitte!"),
    {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "两个部分"},
                    {"type": "text", "text": "的内容"},
                ],
            }
        ]
    },
    {
        "messages": [
            {"role": "user", "content": "def add(a, b):\n    return a + b\n# explain"},
            {"role": "assistant", "content": "It adds", "prefix": True},
        ]
    },
]


@needs_extra
@pytest.mark.parametrize(
    "model", ["open-mistral-nemo-2407", "mistral-large-2411", "mistral-large-2407"]
)
def test_chat_requests_are_counted_as_mistral_common_counts_them(model: str) -> None:
    counter = tokenizers.counter_for(model)
    assert counter.method == "exact"
    file_name = tokenizers.SHIPPED[model]
    assert counter.name == file_name
    for body in BODIES:
        e = estimate_lines(lines([body]), CHAT, counter)
        assert e.method == "exact"
        assert e.input_tokens == reference(file_name, body["messages"]), body


@needs_extra
def test_tool_definitions_are_part_of_the_exact_prompt() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "Weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    counter = tokenizers.counter_for("open-mistral-nemo-2407")
    e = estimate_lines(lines([{"messages": messages, "tools": tools}]), CHAT, counter)
    assert e.input_tokens == reference(
        tokenizers.SHIPPED["open-mistral-nemo-2407"], messages, tools
    )
    without = estimate_lines(lines([{"messages": messages}]), CHAT, counter)
    assert e.input_tokens > without.input_tokens + 10


@needs_extra
def test_every_shipped_tokenizer_loads_offline_and_counts() -> None:
    for name in sorted(set(tokenizers.SHIPPED.values())):
        counter = tokenizers.ExactCounter(name)
        text = "Bonjour, comment ça va ? 12345"
        assert 5 < counter.count_text(text) < 30
        assert counter.count_text("") == 0
        n = counter.count_chat([{"role": "user", "content": text}], None)
        assert n is not None and n >= counter.count_text(text) + REQUEST_OVERHEAD


@needs_extra
def test_fim_is_exact_where_the_tokenizer_supports_it() -> None:
    counter = tokenizers.counter_for("codestral-2405")
    e = estimate_lines(
        lines([{"prompt": "def add(a, b):", "suffix": "    return c", "max_tokens": 32}]),
        "/v1/fim/completions",
        counter,
    )
    assert e.method == "exact" and e.input_tokens > 5
    v1 = tokenizers.ExactCounter("tokenizer.model.v1")  # mistral-medium-2312: no FIM
    assert v1.count_fim("a", "b") is None


@needs_extra
def test_what_mistral_common_refuses_or_cannot_see_offline_is_estimated() -> None:
    counter = tokenizers.counter_for("open-mistral-nemo-2407")
    ends_with_assistant = chat("a question", "an answer")
    e = estimate_lines(lines([ends_with_assistant]), CHAT, counter)
    assert e.method == "heuristic" and e.input_tokens > 0
    image = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": "https://x.test/a.png"}],
            }
        ]
    }
    e = estimate_lines(lines([image]), CHAT, counter)  # would download the image: not tried
    assert (e.method, e.images) == ("heuristic", 1)


@needs_extra
def test_a_plan_is_exact_only_when_every_change_is() -> None:
    table = shipped_table()
    body = lines([chat("hello")])
    nemo = CostItem("a", "open-mistral-nemo", CHAT, lines=iter(body))  # alias of a shipped id
    small = CostItem("b", "mistral-small-latest", CHAT, lines=iter(body))  # no shipped file
    only_nemo = estimate_plan_cost([nemo], table)
    assert only_nemo.method == "exact"
    assert only_nemo.changes[0].counter == "tekken_240718.json"
    both = estimate_plan_cost(
        [CostItem("a", "open-mistral-nemo", CHAT, lines=iter(body)), small], table
    )
    assert both.method == "heuristic"
    assert both.changes[1].counter == "heuristic (tekken)"
    forced = estimate_plan_cost(
        [CostItem("a", "open-mistral-nemo", CHAT, lines=iter(body))], table, exact=False
    )
    assert forced.method == "heuristic"


def test_models_without_a_shipped_tokenizer_say_why_and_use_their_family() -> None:
    assert tokenizers.exact_unavailable("mistral-small-2603") == (
        "mistral-common ships no tokenizer for mistral-small-2603"
    )
    current = tokenizers.counter_for("mistral-small-2603")
    assert isinstance(current, HeuristicCounter) and current.family == "tekken"
    assert tokenizers.family_of("mistral-large-2411") == "sentencepiece"
    assert tokenizers.family_of("open-mistral-nemo-2407") == "tekken"
    assert tokenizers.counter_for(None).method == "heuristic"


def test_without_the_extra_exact_counts_fall_back_and_say_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        tokenizers, "find_spec", lambda name: None if name == "mistral_common" else real(name)
    )
    assert tokenizers.exact_unavailable("open-mistral-nemo-2407") == (
        "mistral-common is not installed (pip install 'reconciler[tokenizer]')"
    )
    counter = tokenizers.counter_for("mistral-large-2411")
    assert isinstance(counter, HeuristicCounter) and counter.family == "sentencepiece"
