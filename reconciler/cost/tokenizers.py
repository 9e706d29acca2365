"""Exact token counts with Mistral's own tokenizers, from the optional ``mistral-common``
package (``pip install 'reconciler[tokenizer]'``), loaded from the files it ships: never
from the network.

mistral-common 1.13 ships seven tokenizer files in ``mistral_common/data`` (SentencePiece
v1, v2, v3, v7 and v7 multimodal; tekken 240718 and 240911) and names the models they
belong to. :data:`SHIPPED` is that table, copied from ``MODEL_NAME_TO_TOKENIZER_CLS`` in
``mistral_common/tokens/tokenizers/mistral.py`` (the function that reads it is deprecated,
so it is not called). Every model released since is tokenized with a newer tekken file that
is published on Hugging Face only: mistral-common ships no tokenizer for the current
``-latest`` models (Mistral Small 3 and 4, Medium 3, Large 3, Magistral, Devstral,
Codestral 25.x, Ministral 3), nor for the embedding, moderation, OCR and transcription
models. Those are counted with the heuristic (:mod:`reconciler.cost.heuristic`) of their
tokenizer family, and their estimates say so.

A chat request is counted by ``encode_chat_completion``: the model's real chat template,
the tokens the API reports as ``prompt_tokens``. A request mistral-common refuses (a
message order it does not accept) or that holds parts it cannot count offline (images,
audio, documents: encoding an ``image_url`` would download it) is counted from its text
instead and makes the estimate heuristic.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from importlib.util import find_spec
from typing import Any, Final

from reconciler.cost.heuristic import Family, HeuristicCounter

EXTRA: Final = "reconciler[tokenizer]"

_SP_V1: Final = "tokenizer.model.v1"
_SP_V2: Final = "mistral_instruct_tokenizer_240216.model.v2"
_SP_V3: Final = "mistral_instruct_tokenizer_240323.model.v3"
_SP_V7: Final = "mistral_instruct_tokenizer_241114.model.v7"
_SP_V7_MM: Final = "mistral_instruct_tokenizer_241114.model.v7m1"
_TEKKEN: Final = "tekken_240718.json"
_TEKKEN_MM: Final = "tekken_240911.json"

# model id -> tokenizer file shipped in mistral_common/data (mistral-common's own table).
SHIPPED: Final[Mapping[str, str]] = {
    "ministral-8b-2410": _TEKKEN,
    "mistral-tiny-2312": _SP_V2,
    "open-mistral-nemo-2407": _TEKKEN,
    "mistral-tiny-2407": _SP_V3,
    "mistral-small-2312": _SP_V2,
    "open-mixtral-8x22b-2404": _SP_V3,
    "mistral-small-2402": _SP_V2,
    "mistral-small-2409": _TEKKEN,
    "mistral-medium-2312": _SP_V1,
    "mistral-large-2402": _SP_V2,
    "mistral-large-2407": _SP_V3,
    "mistral-large-2411": _SP_V7,
    "pixtral-large-2411": _SP_V7_MM,
    "codestral-2405": _SP_V3,
    "codestral-mamba-2407": _SP_V3,
    "pixtral-12b-2409": _TEKKEN_MM,
}


def tokenizer_file(model: str) -> str | None:
    """The mistral-common file that tokenizes ``model`` (a dated id), if it ships one."""
    return SHIPPED.get(model)


def family_of(model: str) -> Family:
    """The tokenizer family whose heuristic weights fit ``model``: SentencePiece for the
    models of :data:`SHIPPED` that use it, tekken for every other (newer) model."""
    name = SHIPPED.get(model)
    return "sentencepiece" if name is not None and not name.startswith("tekken") else "tekken"


def exact_unavailable(model: str) -> str | None:
    """None when ``model`` can be counted exactly here; else why not, in words."""
    name = SHIPPED.get(model)
    if name is None:
        return f"mistral-common ships no tokenizer for {model}"
    if find_spec("mistral_common") is None:
        return f"mistral-common is not installed (pip install '{EXTRA}')"
    if not (resources.files("mistral_common") / "data" / name).is_file():
        return f"the installed mistral-common has no {name}"
    if not name.startswith("tekken") and find_spec("sentencepiece") is None:
        return f"{name} needs sentencepiece (pip install '{EXTRA}')"
    return None


class ExactCounter:
    """A :class:`~reconciler.cost.estimate.TokenCounter` over one shipped tokenizer file."""

    method: Final = "exact"

    def __init__(self, file_name: str) -> None:
        with warnings.catch_warnings():
            # Imported here: an optional extra, and a second of import time.
            # mistral-common announces its own deprecations at import: not ours to show.
            warnings.simplefilter("ignore")
            from mistral_common.exceptions import MistralCommonException  # noqa: PLC0415
            from mistral_common.protocol.fim.request import FIMRequest  # noqa: PLC0415
            from mistral_common.protocol.instruct.request import ChatCompletionRequest  # noqa: PLC0415
            from mistral_common.protocol.instruct.validator import ValidationMode  # noqa: PLC0415
            from mistral_common.tokens.tokenizers.mistral import MistralTokenizer  # noqa: PLC0415

            path = resources.files("mistral_common") / "data" / file_name
            # ValidationMode.test checks what the API's serving path checks (the last
            # message is the user's, a tool result, or an assistant prefix) without
            # requiring a model name in the request.
            self._tokenizer = MistralTokenizer.from_file(str(path), mode=ValidationMode.test)
        self.name = file_name
        self._raw = self._tokenizer.instruct_tokenizer.tokenizer
        _count_faster(self._tokenizer)
        self._request: Callable[..., Any] = ChatCompletionRequest
        self._fim: Callable[..., Any] = FIMRequest
        # pydantic's errors are ValueErrors; mistral-common's own have their root.
        self._refused: tuple[type[Exception], ...] = (MistralCommonException, ValueError)

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        return len(self._raw.encode(text, bos=False, eos=False))

    def count_chat(self, messages: list[dict[str, Any]], tools: Any) -> int | None:
        """The prompt's tokens with the model's chat template, or None if refused."""
        try:
            request = self._request(messages=messages, tools=tools or None)
            return len(self._tokenizer.encode_chat_completion(request).tokens)
        except self._refused:
            return None

    def count_fim(self, prompt: str, suffix: str) -> int | None:
        try:
            return len(self._tokenizer.encode_fim(self._fim(prompt=prompt, suffix=suffix)).tokens)
        except self._refused:
            return None


def _count_faster(tokenizer: Any) -> None:
    """Two shortcuts for one tokenizer object (ours alone: nothing global is patched), each
    giving the same tokens: mistral-common 1.13 decodes every encoded prompt back to text
    for a deprecated property (``Tokenized.text``) that counting never reads, and its
    tekken ``encode`` reads a computed property once per token. Together they halve the
    time of an exact estimate; tests/cost/test_cost_exact.py compares the counts with an
    untouched tokenizer's."""
    instruct = tokenizer.instruct_tokenizer
    instruct.decode = lambda tokens, special_token_policy=None: ""
    raw = instruct.tokenizer
    model = getattr(raw, "_model", None)
    if model is None or not hasattr(model, "encode"):  # SentencePiece, or a changed tekken
        return
    shift, bos_id, eos_id, encode = raw.num_special_tokens, raw.bos_id, raw.eos_id, model.encode

    def shifted(s: str, bos: bool, eos: bool) -> list[int]:
        tokens = [t + shift for t in encode(s)]
        if bos:
            tokens.insert(0, bos_id)
        if eos:
            tokens.append(eos_id)
        return tokens

    raw.encode = shifted


@cache
def _exact(file_name: str) -> ExactCounter:
    return ExactCounter(file_name)


@cache
def _heuristic(family: Family) -> HeuristicCounter:
    return HeuristicCounter(family)


def counter_for(model: str | None, *, exact: bool = True) -> ExactCounter | HeuristicCounter:
    """The best counter for ``model`` (a dated id: resolve aliases first) on this machine:
    its own tokenizer when mistral-common ships it and is installed (and ``exact``), else
    the heuristic of its family. Tokenizers are loaded once per process."""
    if model is None:
        return _heuristic("tekken")
    if exact and exact_unavailable(model) is None:
        return _exact(SHIPPED[model])
    return _heuristic(family_of(model))
