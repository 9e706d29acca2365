"""``reconciler.render.safe``: the one escaping module every view uses, property-tested.

Whatever the text (any code point, surrogates and unassigned ones included), what reaches
a terminal holds no character that is not printable, and what reaches markdown cannot open
or close a tag, start a comment, a link, an image or a mention, or leave its line.
"""

from __future__ import annotations

import json
import re
import unicodedata

from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.render import safe

# Every code point, surrogates included: JSON and the API can carry any of them.
ANY_TEXT = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF))
HOSTILE = [
    "\x1b[31mred\x1b[0m",
    "\x1b]8;;http://evil.example\x07link\x1b]8;;\x07",  # OSC 8 hyperlink
    "\x9b31m",  # C1 CSI
    "\x90qDCS\x9c",
    "abc\rdef",
    "</summary>\n\n@team LGTM",
    "</details><!-- ",
    "![x](http://evil.example/x.png)",
    "[click](https://evil.example)",
    "a | b",
    "\u202eevil",
    "line\u2028break",
    "`code` ``` fence",
    "x@example.com and www.evil.example",
]


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in text)


JSON_TEXT = ANY_TEXT.filter(lambda t: not _has_surrogate(t))
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_TEXT, inner, max_size=3),
    max_leaves=10,
)


def _control(c: str) -> bool:
    return unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}


@given(ANY_TEXT)
def test_terminal_output_is_printable_and_one_line(text: str) -> None:
    shown = safe.terminal(text)
    assert shown.isprintable()
    assert not any(_control(c) for c in shown)
    assert "\n" not in shown and "\r" not in shown and "\x1b" not in shown


PRINTABLE = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))


@given(st.text(alphabet=PRINTABLE))
def test_printable_text_is_left_alone(text: str) -> None:
    if text.isprintable():
        assert safe.terminal(text) == text


@given(st.lists(ANY_TEXT.filter(lambda t: "\n" not in t), min_size=1, max_size=5))
def test_terminal_lines_keeps_only_our_line_breaks(lines: list[str]) -> None:
    shown = safe.terminal_lines("\n".join(lines))
    assert shown.split("\n") == [safe.terminal(line) for line in lines]
    assert all(line.isprintable() for line in shown.split("\n"))


@given(ANY_TEXT)
@example("</summary>\n\n@team LGTM")
@example("<!-- x -->")
@example("![img](http://evil.example/a.png)")
def test_markdown_output_is_inert(text: str) -> None:
    shown = safe.markdown(text)
    assert shown.isprintable() and "\n" not in shown
    # Nothing that opens or closes HTML, a comment, a link, an image, a code span, a
    # table cell, or a mention: each such character is an entity.
    for c in "<>[]`|\\":
        assert c not in shown
    assert re.search(r"@(?!&#8203;)", shown.replace("&#64;", "@")) is None
    assert "://" not in shown
    assert "www." not in shown.lower()
    # Every '&' starts an entity we wrote (no raw '&' could form one with the text).
    assert re.fullmatch(r"([^&]|&(amp|lt|gt|#\d+);)*", shown)


@given(ANY_TEXT)
def test_code_spans_are_inert_too(text: str) -> None:
    shown = safe.code(text)
    if shown.startswith("`"):
        inner = shown[1:-1]
        assert shown.endswith("`") and "`" not in inner and inner == text
        assert re.fullmatch(r"[A-Za-z0-9 ._:/+=,@_-]+", inner)
    else:
        assert shown == f"<code>{safe.markdown(text)}</code>"


@given(JSON_VALUES)
def test_json_text_means_the_same_and_is_printable(value: object) -> None:
    for indent in (None, 2):
        document = json.dumps(value, ensure_ascii=False, indent=indent)
        shown = safe.json_text(document)
        assert json.loads(shown) == value
        assert all(line.isprintable() for line in shown.split("\n"))


def test_hostile_examples_are_shown_escaped() -> None:
    assert safe.terminal("\x1b[31mred\x1b[0m") == "\\x1b[31mred\\x1b[0m"
    assert safe.terminal("a\nb\tc\rd") == "a\\nb\\tc\\rd"
    assert safe.terminal("\x9b31m\x7f") == "\\x9b31m\\x7f"
    assert safe.terminal("\u202eevil") == "\\u202eevil"
    assert safe.terminal("café 東京 ✓") == "café 東京 ✓"
    assert safe.markdown("</summary>\n\n@team LGTM") == (
        "&lt;/summary&gt;&#92;n&#92;n&#64;&#8203;team LGTM"
    )
    assert safe.markdown("see https://evil.example") == "see https:&#8203;//evil.example"
    assert safe.code("support-analytics") == "`support-analytics`"
    assert safe.code("a`b") == "<code>a&#96;b</code>"
    for text in HOSTILE:
        assert "\x1b" not in safe.terminal(text)
        assert "<" not in safe.markdown(text)
