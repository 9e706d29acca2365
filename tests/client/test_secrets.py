"""``reconciler.secrets``: the key check and the redaction rule, property-tested.

The rule under test (see the module docstring): no output contains any 8 consecutive
characters of a key of 8 or more; a shorter key never appears as a whole word; text that
holds no part of the key is left exactly as it was.
"""

from __future__ import annotations

import json
import urllib.parse

from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.render.safe import terminal
from reconciler.secrets import WINDOW, Redactor, key_problem

KEY_CHARS = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
KEYS = st.text(alphabet=KEY_CHARS, min_size=WINDOW, max_size=64)
SHORT_KEYS = st.text(alphabet=KEY_CHARS, min_size=1, max_size=WINDOW - 1)
ANY_TEXT = st.text(max_size=40)


def windows(key: str) -> set[str]:
    return {key[i : i + WINDOW] for i in range(len(key) - WINDOW + 1)}


@st.composite
def leaky_texts(draw: st.DrawFn, key: str) -> str:
    """Text a server or an exception might produce: noise, and pieces of the key (whole,
    prefixes, suffixes, middles of 8 or more), raw or escaped the usual ways."""
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        parts.append(draw(ANY_TEXT))
        start = draw(st.integers(0, len(key) - WINDOW))
        end = draw(st.integers(start + WINDOW, len(key)))
        piece = key[start:end]
        form = draw(st.sampled_from(["raw", "repr", "json", "quote", "terminal", "bearer"]))
        parts.append(
            {
                "raw": piece,
                "repr": repr(piece)[1:-1],
                "json": json.dumps(piece)[1:-1],
                "quote": urllib.parse.quote(piece, safe=""),
                "terminal": terminal(piece),
                "bearer": f"Illegal header value b'Bearer {piece}'",
            }[form]
        )
    parts.append(draw(ANY_TEXT))
    return "".join(parts)


@given(st.data(), KEYS)
@example(None, "sk-test-do-not-print-7f3a9c2e41")
def test_no_output_holds_any_eight_characters_of_the_key(data: st.DataObject, key: str) -> None:
    text = "x" * 290 + key if data is None else data.draw(leaky_texts(key))
    shown = Redactor(key).redact(text)
    assert not any(w in shown for w in windows(key)), (key, text, shown)


@given(KEYS, ANY_TEXT)
def test_text_without_a_part_of_the_key_is_unchanged(key: str, text: str) -> None:
    redactor = Redactor(key)
    if not any(text[i : i + WINDOW] in redactor._windows for i in range(len(text))):
        assert redactor.redact(text) == text


@given(KEYS, st.data())
def test_cut_to_length_after_redaction_leaves_nothing(key: str, data: st.DataObject) -> None:
    text = data.draw(leaky_texts(key))
    cut = data.draw(st.integers(0, len(text)))
    shown = Redactor(key).redact(text)[:cut]
    assert not any(w in shown for w in windows(key))


@given(SHORT_KEYS, st.data())
def test_a_short_key_never_shows_as_a_word(key: str, data: st.DataObject) -> None:
    before = data.draw(ANY_TEXT.map(lambda t: t + " "))
    after = data.draw(ANY_TEXT.map(lambda t: " " + t))
    shown = Redactor(key).redact(f"{before}Bearer {key}{after}")
    assert f"Bearer {key}" not in shown
    assert "Bearer " in shown


def test_a_short_key_does_not_mangle_words_that_contain_it() -> None:
    redactor = Redactor("abc")
    assert redactor.redact("abcdef xabc abc. (abc)") == "abcdef xabc ***. (***)"
    assert Redactor("k3y!").redact("Bearer k3y!") == "Bearer ***"


def test_the_marker_never_shares_a_character_with_the_key() -> None:
    assert Redactor("sk-abcdefgh").marker == "***"
    key = "sk-***-abcdefgh"
    redactor = Redactor(key)
    assert not set(redactor.marker) & set(key)
    assert key not in redactor.redact(f"key={key}")


def test_examples() -> None:
    key = "sk-test-do-not-print-7f3a9c2e41"
    redactor = Redactor(key)
    assert redactor.redact(f"you sent Bearer {key}!") == "you sent Bearer ***!"
    assert redactor.redact(f"prefix {key[:12]}…") == "prefix ***…"
    assert redactor.redact(f"suffix …{key[-9:]}") == "suffix …***"
    assert redactor.redact("ordinary text, no key") == "ordinary text, no key"
    assert Redactor(None).redact(key) == key


PHRASES = (
    "has whitespace or a line break around it (pasted with a newline?)",
    "contains a line break (CR or LF)",
    "contains a control character",
    "contains a space or a tab",
    "contains a character that is not ASCII",
)


@given(st.text(max_size=20))
def test_the_key_check_never_shows_the_key(key: str) -> None:
    problem = key_problem(key, name="K")
    if problem is None:
        assert all(0x21 <= ord(c) <= 0x7E for c in key)
        return
    head = "K cannot be sent as an API key: it "
    tail = (
        ". An API key is printable ASCII without spaces; check how the secret was stored "
        "(its value is not shown)."
    )
    assert problem.startswith(head) and problem.endswith(tail)
    # Only our fixed phrases in between: nothing of the key.
    middle = problem[len(head) : -len(tail)].split(" and ")
    assert middle and all(part in PHRASES for part in middle)


def test_the_key_check_says_what_is_wrong() -> None:
    assert key_problem("sk-abc") is None
    assert "line break (CR or LF)" in (key_problem("sk-a\r\nb") or "")
    assert "whitespace or a line break around it" in (key_problem("sk-abc\n") or "")
    assert "control character" in (key_problem("sk-\x1bx") or "")
    assert "space or a tab" in (key_problem("sk- x") or "")
    assert "not ASCII" in (key_problem("sk-é") or "")
    assert "not ASCII" in (key_problem("sk-☃") or "")
