"""Token counts without a tokenizer: a linear model over character classes, calibrated
against Mistral's own tokenizers.

A text's UTF-8 bytes are sorted into classes whose cost in tokens differs: ASCII letters
(about 4 to 5 per token in English), digits (Mistral's tokenizers split numbers into single
digits: one token each), spaces (mostly merged into the next word), line breaks and tabs,
ASCII punctuation, and non-ASCII characters by the length of their UTF-8 encoding and
script block (2 bytes: accented Latin, Greek, Cyrillic, Arabic, Hebrew; 3 bytes: Indic,
Thai and general punctuation, then CJK and kana, then Hangul; 4 bytes: emoji). The estimate
is the weighted sum of the counts, rounded, at least 1 for a non-empty text. Counting is
a handful of ``bytes.translate``/``count`` passes in C: no regular expression, no Python
loop over characters.

The weights were fitted (non-negative least squares on relative error, digits fixed at 1)
on ``tests/cost/data/corpus.json`` against ``tekken_240718.json`` (the tekken family: every
Mistral model since mid-2024) and against the v7 SentencePiece tokenizer (older models);
``tests/cost/test_heuristic_error.py`` measures the error on that corpus and on held-out
text and asserts the bounds stated in docs/concepts.md ("How cost is estimated").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

Family = Literal["tekken", "sentencepiece"]
CLASSES: Final = (
    "letters",
    "digits",
    "spaces",
    "breaks",
    "punct",
    "2byte",
    "3byte_indic",
    "3byte_cjk",
    "3byte_hangul",
    "4byte",
)

_LETTERS: Final = bytes(range(65, 91)) + bytes(range(97, 123))
_DIGITS: Final = bytes(range(48, 58))
_BREAKS: Final = b"\n\t\r"


def _class_table() -> bytes:
    """Each byte -> the index of its class (as a byte); continuation bytes -> 0xFF."""
    table = bytearray([0xFF] * 256)
    for b in range(128):
        if b in _LETTERS:
            table[b] = 0
        elif b in _DIGITS:
            table[b] = 1
        elif b == 0x20:
            table[b] = 2
        elif b in _BREAKS:
            table[b] = 3
        else:
            table[b] = 4
    for b in range(0xC0, 0xE0):
        table[b] = 5
    for b in range(0xE0, 0xE3):  # U+0800-U+2FFF: Indic, Thai, Georgian, general punctuation
        table[b] = 6
    for b in range(0xE3, 0xEA):  # U+3000-U+9FFF: CJK, kana
        table[b] = 7
    for b in range(0xEA, 0xF0):  # U+A000-U+FFFF: Hangul, compatibility forms
        table[b] = 8
    for b in range(0xF0, 0x100):
        table[b] = 9
    return bytes(table)


_TABLE: Final = _class_table()
_CLASS_BYTES: Final = tuple(bytes([i]) for i in range(len(CLASSES)))


def features(text: str) -> tuple[int, ...]:
    """How many characters of ``text`` fall in each of :data:`CLASSES` (for calibration)."""
    classes = text.encode("utf-8", "surrogatepass").translate(_TABLE)
    return tuple(classes.count(c) for c in _CLASS_BYTES)


@dataclass(frozen=True)
class Weights:
    """Tokens per character of each class, in the order of :data:`CLASSES`."""

    family: Family
    per_class: tuple[float, ...]


# Fitted as described in the module docstring (see tests/cost/test_heuristic_error.py).
TEKKEN: Final = Weights("tekken", (0.259, 1.0, 0.043, 0.137, 0.684, 0.35, 0.486, 0.803, 0.735, 3.0))
SENTENCEPIECE: Final = Weights(
    "sentencepiece", (0.273, 1.0, 0.222, 0.442, 0.644, 0.575, 1.155, 1.103, 1.585, 2.0)
)
WEIGHTS: Final = {"tekken": TEKKEN, "sentencepiece": SENTENCEPIECE}


class HeuristicCounter:
    """A :class:`~reconciler.cost.estimate.TokenCounter` that never loads a tokenizer."""

    method: Final = "heuristic"

    def __init__(self, family: Family = "tekken") -> None:
        self.family = family
        self.name = f"heuristic ({family})"
        self._weights = WEIGHTS[family].per_class

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        w = self._weights
        data = text.encode("utf-8", "surrogatepass")
        classes = data.translate(_TABLE)
        count = classes.count
        letters = count(b"\x00")
        digits = count(b"\x01")
        spaces = count(b"\x02")
        breaks = count(b"\x03")
        if text.isascii():
            punct = len(data) - letters - digits - spaces - breaks
            value = w[0] * letters + w[1] * digits + w[2] * spaces + w[3] * breaks + w[4] * punct
        else:
            value = (
                w[0] * letters
                + w[1] * digits
                + w[2] * spaces
                + w[3] * breaks
                + w[4] * count(b"\x04")
                + w[5] * count(b"\x05")
                + w[6] * count(b"\x06")
                + w[7] * count(b"\x07")
                + w[8] * count(b"\x08")
                + w[9] * count(b"\x09")
            )
        return max(1, round(value))

    def count_chat(self, messages: list[dict[str, object]], tools: object) -> int | None:
        return None  # no template to apply: the estimator adds its stated overheads

    def count_fim(self, prompt: str, suffix: str) -> int | None:
        return None
