"""Escaping of untrusted text at the rendering edge: one place, used by every view.

Names, metadata, ids, statuses, messages and result lines read from the API may be written
by anyone in the organisation (and configuration files and plan files by anyone who can
open a pull request). They are kept as they are in the data and escaped only when shown:

    terminal(text)      no character that is not printable reaches a terminal: C0 (ESC,
                        CR, LF, BEL, ...), DEL, C1 (CSI, OSC, DCS, ...), bidi and other
                        format characters, line and paragraph separators, unassigned code
                        points. Each is shown as a Python-style escape (``\\x1b``, ``\\n``,
                        ``\\u202e``), so the text stays on its line and readable.
    terminal_lines(t)   the same, line by line, for text whose line breaks are our own
                        (a multi-line report); a lone CR is escaped too.
    markdown(text)      text inside markdown or HTML (a table cell, a ``<summary>``, a
                        bullet): escaped as above, then every character markdown or HTML
                        gives a meaning to becomes an entity, so it cannot close a tag,
                        start a comment, a link or an image (``<``, ``[`` and ``]`` are
                        entities), emphasise, break a table cell or a line, or mention
                        anyone (``@`` is followed by a zero-width space: GitHub's mention
                        and e-mail autolinks need a name right after it); bare URLs are
                        defused the same way.
    code(text)          an inline code span of ``markdown``: backticks when the text is
                        plain, ``<code>`` with the escaped text otherwise.
    json_text(doc)      a serialised JSON document whose strings may hold raw characters
                        that ``json.dumps(ensure_ascii=False)`` leaves as they are (DEL, C1,
                        format characters): each becomes its ``\\uXXXX`` escape. The document
                        means exactly the same.

All functions are pure and total. Plain text (letters of any script, digits, punctuation,
spaces) passes through ``terminal`` unchanged.
"""

from __future__ import annotations

import re
from typing import Final

# Escapes that read better than \xNN.
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Characters markdown or HTML gives a meaning to, as entities. Entities work both in
# markdown text and inside HTML blocks (a <summary>), where backslash escapes do not.
_MARKDOWN: Final = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    "`": "&#96;",
    "\\": "&#92;",
    "|": "&#124;",
    "[": "&#91;",
    "]": "&#93;",
    "*": "&#42;",
    "~": "&#126;",
    "#": "&#35;",
    "$": "&#36;",
    "@": "&#64;&#8203;",  # a zero-width space after it: no mention, no e-mail autolink
}
_ZWSP: Final = "&#8203;"
# Bare URLs and www. names are autolinked by GitHub: a zero-width space defuses them.
_AUTOLINK: Final = re.compile(r"(?i)(://|www\.)")
_PLAIN_CODE: Final = re.compile(r"[A-Za-z0-9 ._:/+=,@_-]+")
_JSON_UNSAFE: Final = re.compile(r"[^\n -~]")


def _escape_char(c: str) -> str:
    named = _NAMED.get(c)
    if named is not None:
        return named
    code = ord(c)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def terminal(text: str) -> str:
    """``text`` with every character that is not printable escaped (one line, always)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def terminal_lines(text: str) -> str:
    """Each line of ``text`` escaped with :func:`terminal`; the ``\\n`` between lines kept."""
    return "\n".join(terminal(line) for line in text.split("\n"))


def markdown(text: str) -> str:
    """``text`` safe anywhere in a markdown comment: inline, inert, on one line."""
    shown = "".join(_MARKDOWN.get(c, c) for c in terminal(text))
    return _AUTOLINK.sub(lambda m: _defuse(m.group(0)), shown)


def _defuse(found: str) -> str:
    if found == "://":
        return ":" + _ZWSP + "//"
    return found[:3] + _ZWSP + found[3:]


def code(text: str) -> str:
    """An inline code span showing ``text``: `` `text` `` when that is plain, else an
    escaped ``<code>`` element (a backtick or an ``@`` cannot end or escape it)."""
    if _PLAIN_CODE.fullmatch(text) and "://" not in text and "www." not in text.lower():
        return f"`{text}`"
    return f"<code>{markdown(text)}</code>"


def json_text(document: str) -> str:
    """A JSON text with every raw character outside printable ASCII that is not printable
    replaced by its ``\\uXXXX`` escape (only strings can hold one: the meaning is kept)."""

    def escape(match: re.Match[str]) -> str:
        c = match.group(0)
        if c.isprintable():
            return c
        code = ord(c)
        if code <= 0xFFFF:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return _JSON_UNSAFE.sub(escape, document)
