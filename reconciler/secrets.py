"""The API key: whether it can be sent at all, and how it is kept out of every output.

Two pure pieces, used by the client (before any request, and on every message it builds)
and by the CLI (on everything it prints to stderr: errors, tracebacks, the debug log):

``key_problem(key)``
    Why ``key`` cannot be sent as ``Authorization: Bearer <key>``, or None. An API key is
    printable ASCII without spaces: a line break (CR, LF) would split the header, another
    control character or a non-ASCII one is not a valid header value, and whitespace around
    it is almost always a newline pasted with it. The reason names the kind of character,
    never the key or any part of it.

``Redactor(key).redact(text)``
    ``text`` with every recognisable part of the key replaced by ``***``. The rule:

    - a key of 8 characters or more: every stretch of ``text`` covered by some 8-character
      window of the key is replaced (overlapping stretches merge into one ``***``). So the
      whole key, a long prefix or suffix, or any 8 consecutive characters of it are gone,
      and no 8 consecutive characters of the key remain anywhere in the result. The key is
      also looked for as it appears escaped (``repr``, JSON, percent-encoding, and the
      terminal escaping of :mod:`reconciler.render.safe`), so an echoed ``b'Bearer …'``
      cannot show it either.
    - a key shorter than 8 characters: each occurrence of the whole key that is not part of
      a longer word (no letter or digit right before or after it) is replaced. A short key
      inside a word is left, so that a toy key like ``abc`` does not mangle ``abcdef``.

    Redaction comes before any truncation (a cut key is no longer whole, but its parts are
    still recognisable here, so the order matters only for the reader's sake).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Mapping
from typing import Final

from reconciler.errors import ReconcilerError

KEY_ENV: Final = "MISTRAL_API_KEY"
WINDOW: Final = 8  # characters: the shortest stretch of the key treated as recognisable
_MARKERS: Final = ("***", "[redacted]", "<redacted>", "###", "\u00b7\u00b7\u00b7")


class InvalidKey(ReconcilerError):
    """The API key cannot be sent (the message never contains any of it)."""


def key_problem(key: str, *, name: str = KEY_ENV) -> str | None:
    """Why ``key`` is not a usable bearer token, without showing any of it; None if it is."""
    found: list[str] = []
    if key != key.strip():
        found.append("has whitespace or a line break around it (pasted with a newline?)")
    inner = key.strip()
    if any(c in "\r\n" for c in inner):
        found.append("contains a line break (CR or LF)")
    if any((ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F) and c not in "\r\n" for c in inner):
        found.append("contains a control character")
    if any(c in " \t" for c in inner):
        found.append("contains a space or a tab")
    if any(ord(c) > 0x7E and not 0x7F <= ord(c) <= 0x9F for c in key):
        found.append("contains a character that is not ASCII")
    if not found:
        return None
    return (
        f"{name} cannot be sent as an API key: it {' and '.join(found)}. An API key is "
        "printable ASCII without spaces; check how the secret was stored (its value is not "
        "shown)."
    )


def check_key(key: str, *, name: str = KEY_ENV) -> None:
    problem = key_problem(key, name=name)
    if problem is not None:
        raise InvalidKey(problem)


def _forms(key: str) -> set[str]:
    """The key as it may appear in text: raw, and as the usual escapings write it."""
    from reconciler.render.safe import terminal  # noqa: PLC0415 (a leaf module; no cycle)

    return {
        key,
        repr(key)[1:-1],
        json.dumps(key)[1:-1],
        json.dumps(key, ensure_ascii=False)[1:-1],
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote_plus(key),
        terminal(key),
    }


class Redactor:
    """Removes every recognisable part of one key from text (see the module docstring)."""

    def __init__(self, key: str | None) -> None:
        self._key = key or ""
        self.marker = next((m for m in _MARKERS if not set(m) & set(self._key)), "<redacted key>")
        self._windows: frozenset[str] = frozenset()
        self._short: re.Pattern[str] | None = None
        if len(self._key) >= WINDOW:
            self._windows = frozenset(
                form[i : i + WINDOW]
                for form in _forms(self._key)
                for i in range(len(form) - WINDOW + 1)
            )
        elif self._key:
            alternatives = "|".join(
                re.escape(f) for f in sorted(_forms(self._key), key=len, reverse=True)
            )
            self._short = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Redactor:
        """For what the CLI prints: the key as the environment holds it (even a bad one)."""
        return cls(env.get(KEY_ENV) or "")

    @property
    def active(self) -> bool:
        return bool(self._key)

    def redact(self, text: str) -> str:
        if not self._key or not text:
            return text
        if self._short is not None:
            return self._short.sub(self.marker, text)
        windows = self._windows
        covered_until = -1  # the end of the current redacted stretch
        spans: list[list[int]] = []
        for i in range(len(text) - WINDOW + 1):
            if text[i : i + WINDOW] in windows:
                if spans and i <= covered_until:
                    spans[-1][1] = i + WINDOW
                else:
                    spans.append([i, i + WINDOW])
                covered_until = i + WINDOW
        if not spans:
            return text
        out: list[str] = []
        at = 0
        for start, end in spans:
            out.append(text[at:start])
            out.append(self.marker)
            at = end
        out.append(text[at:])
        return "".join(out)


NO_REDACTION: Final = Redactor(None)
