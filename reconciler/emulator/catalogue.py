"""Mistral's public model catalogue, as ``GET /v1/models`` serves it, and which batch
endpoints each model serves.

Source: the model cards of Mistral's public documentation (repository
mistralai/platform-docs-public, ``src/schema/models/models/*.ts``, commit 222f4ba of
2026-08-21: ``identifiers.apiNames``, ``capabilities.features``/``input``/``output``,
``contextLength``, ``status`` and ``metadata.retirementDate``). A model is listed when it was
not retired on that date (its card's status is GA, PublicPreview or Deprecated, and its
retirement date, if any, is later); deprecated ones carry their retirement date in
``deprecation``. Update this table, its source and its date together.

Wire shape (checked against the SDK's ``ModelList``/``BaseModelCard``, and against listings
the real API returned): one card per API name — the dated id and each alias get a card of
their own, ``name`` is the dated id, ``aliases`` the model's other names. The cards'
``capabilities`` have only the SDK's keys; embeddings models set none of them (as the real
API shows them), so which endpoint a model serves is kept here beside the cards
(:data:`ENDPOINTS_OF`). The docs' ``batching`` feature is not used: they leave it off models
their own batch examples use (``voxtral-mini-latest``).

Pure data and pure functions: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

CATALOGUE_SOURCE: Final = "mistralai/platform-docs-public src/schema/models (222f4ba)"
CATALOGUE_DATE: Final = "2026-08-21"
FINE_TUNED_PREFIX: Final = "ft:"

CHAT = "/v1/chat/completions"
FIM = "/v1/fim/completions"
EMBEDDINGS = "/v1/embeddings"
MODERATIONS = "/v1/moderations"
CHAT_MODERATIONS = "/v1/chat/moderations"
OCR = "/v1/ocr"
CLASSIFICATIONS = "/v1/classifications"
CHAT_CLASSIFICATIONS = "/v1/chat/classifications"
CONVERSATIONS = "/v1/conversations"
TRANSCRIPTIONS = "/v1/audio/transcriptions"

# What each documented feature (or modality) means on the wire: capability keys of the
# SDK's ModelCapabilities, and batch endpoints served.
_FEATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "chat": (("completion_chat",), (CHAT, CONVERSATIONS)),
    "tools": (("function_calling",), ()),
    "fim": (("completion_fim",), (FIM,)),
    "vision": (("vision",), ()),
    "reasoning": (("reasoning",), ()),
    "embeddings": ((), (EMBEDDINGS,)),
    "moderation": (("moderation",), (MODERATIONS, CHAT_MODERATIONS)),
    "ocr": (("ocr",), (OCR,)),
    "audio": (("audio",), ()),
    "transcription": (("audio_transcription",), (TRANSCRIPTIONS,)),
    "realtime": (("audio_transcription_realtime",), ()),
    "speech": (("audio_speech",), ()),
}

CAPABILITY_KEYS: Final = (
    "completion_chat",
    "function_calling",
    "reasoning",
    "completion_fim",
    "fine_tuning",
    "vision",
    "ocr",
    "classification",
    "moderation",
    "audio",
    "audio_transcription",
    "audio_transcription_realtime",
    "audio_speech",
    "unified_resources",
)


@dataclass(frozen=True)
class Model:
    """One model: its dated id, its aliases, what it does."""

    id: str
    aliases: tuple[str, ...]
    context: int  # max_context_length, tokens
    features: frozenset[str]
    description: str
    retires: str | None = None  # ISO date: deprecated, stops working then
    replacement: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return (self.id, *self.aliases)

    @property
    def endpoints(self) -> frozenset[str]:
        return frozenset(e for f in self.features for e in _FEATURES[f][1])

    def capabilities(self) -> dict[str, bool]:
        on = {key for f in self.features for key in _FEATURES[f][0]}
        return {key: key in on for key in CAPABILITY_KEYS}


def _m(
    id: str,
    aliases: tuple[str, ...],
    context: int,
    features: str,
    description: str,
    retires: str | None = None,
    replacement: str | None = None,
) -> Model:
    return Model(
        id, aliases, context, frozenset(features.split()), description, retires, replacement
    )


_K = 1024
# fmt: off
MODELS: Final = (
    _m("mistral-medium-3-5", ("mistral-medium-3", "mistral-medium-latest"), 256 * _K,
       "chat tools vision reasoning", "Mistral Medium 3.5, frontier multimodal model"),
    _m("mistral-medium-2508", (), 128 * _K, "chat tools vision",
       "Mistral Medium 3.1", "2026-08-31", "mistral-medium-latest"),
    _m("mistral-medium-2505", (), 128 * _K, "chat tools vision",
       "Mistral Medium 3", "2026-08-31", "mistral-medium-latest"),
    _m("mistral-small-2603", ("mistral-small-latest",), 256 * _K, "chat tools vision",
       "Mistral Small 4, hybrid multimodal model"),
    _m("mistral-large-2512", ("mistral-large-latest",), 256 * _K, "chat tools vision",
       "Mistral Large 3"),
    _m("ministral-14b-2512", ("ministral-14b-latest",), 256 * _K, "chat tools vision",
       "Ministral 3 14B"),
    _m("ministral-8b-2512", ("ministral-8b-latest",), 256 * _K, "chat tools vision",
       "Ministral 3 8B"),
    _m("ministral-3b-2512", ("ministral-3b-latest",), 256 * _K, "chat tools vision",
       "Ministral 3 3B"),
    _m("codestral-2508", ("codestral-latest",), 128 * _K, "chat tools fim",
       "Codestral 25.08, code completion and fill-in-the-middle"),
    _m("labs-leanstral-1-5", (), 256 * _K, "chat tools vision",
       "Leanstral 1.5 (public preview)", "2026-09-30"),
    _m("zai-glm-5-2", (), 1024 * _K, "chat tools reasoning", "GLM 5.2 (public preview)"),
    _m("voxtral-small-2507", ("voxtral-small-latest",), 32 * _K, "chat tools audio",
       "Voxtral Small, audio and text chat"),
    _m("mistral-embed-2312", ("mistral-embed",), 8 * _K, "embeddings",
       "Mistral Embed, text embeddings"),
    _m("codestral-embed-2505", ("codestral-embed",), 8 * _K, "embeddings",
       "Codestral Embed, code embeddings"),
    _m("mistral-moderation-2603", ("mistral-moderation-latest",), 128 * _K, "moderation",
       "Mistral Moderation 2"),
    _m("mistral-ocr-4-1", ("mistral-ocr-4", "mistral-ocr-latest"), 32 * _K, "ocr vision",
       "Mistral OCR 4.1 (public preview)"),
    _m("mistral-ocr-4-0", (), 32 * _K, "ocr vision", "Mistral OCR 4.0"),
    _m("mistral-ocr-2512", (), 32 * _K, "ocr vision", "Mistral OCR 3"),
    _m("voxtral-mini-2602", ("voxtral-mini-latest",), 32 * _K, "audio transcription",
       "Voxtral Mini Transcribe 2"),
    _m("voxtral-mini-transcribe-realtime-2602", ("voxtral-mini-transcribe-realtime-latest",),
       32 * _K, "audio transcription realtime", "Voxtral Mini Transcribe Realtime"),
    _m("voxtral-mini-tts-2603", ("voxtral-mini-tts-latest",), 32 * _K, "speech",
       "Voxtral TTS, text to speech"),
)
# fmt: on

_BY_NAME: Final = {name: model for model in MODELS for name in model.names}


def lookup(name: str) -> Model | None:
    """The catalogue model behind an id or alias (None: not a base model)."""
    return _BY_NAME.get(name)


def is_fine_tuned(name: str) -> bool:
    """A fine-tuned model id (``ft:<base>:...``): the emulator cannot know a workspace's
    fine-tunes, so it accepts any of them, for any endpoint."""
    return name.startswith(FINE_TUNED_PREFIX) and len(name) > len(FINE_TUNED_PREFIX)


def model_problem(name: str, endpoint: str) -> str | None:
    """Why a job with this model and endpoint is refused (None: it is fine)."""
    if is_fine_tuned(name):
        return None
    model = lookup(name)
    if model is None:
        return f"Invalid model: {name}"
    if endpoint not in model.endpoints:
        served = ", ".join(sorted(model.endpoints)) or "no batch endpoint"
        return f"Invalid model: {name} does not serve {endpoint} (it serves {served})"
    return None


def _deprecation(model: Model) -> str | None:
    if model.retires is None:
        return None
    moment = datetime.fromisoformat(model.retires).replace(hour=12, tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def card(name: str, created: int) -> dict[str, Any] | None:
    """The model card of one API name, as ``GET /v1/models/{id}`` returns it."""
    model = lookup(name)
    if model is None:
        return None
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "mistralai",
        "capabilities": model.capabilities(),
        "name": model.id,
        "description": model.description,
        "max_context_length": model.context,
        "aliases": [other for other in model.names if other != name],
        "deprecation": _deprecation(model),
        "deprecation_replacement_model": model.replacement,
        "default_model_temperature": None,
        "type": "base",
    }


def cards(
    created: int, *, provider: str | None = None, model: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every card, in catalogue order; ``provider`` (owner) and ``model`` (any of a model's
    names) filter like the list operation's query parameters."""
    if provider is not None and provider != "mistralai":
        return
    for entry in MODELS:
        if model is not None and model not in entry.names:
            continue
        for name in entry.names:
            built = card(name, created)
            assert built is not None
            yield built
