"""``${{ … }}`` templates: lookups only, values keep their types, hostile templates refused."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.config import templates
from reconciler.config.templates import Lookup, TemplateError, parse

ROW = ("row",)
BOTH = ("matrix", "row")


def render(text: str, **row: Any) -> Any:
    return parse(text, ROW).render({"row": row})


# -- what a template is ----------------------------------------------------------------


def test_a_whole_string_lookup_keeps_the_json_type_of_its_value() -> None:
    assert render("${{ row.n }}", n=300) == 300
    assert render("${{row.t}}", t=0.7) == 0.7
    assert render("${{ row.ok }}", ok=False) is False
    assert render("${{ row.x }}", x=None) is None
    assert render("${{ row.m }}", m={"a": [1, 2]}) == {"a": [1, 2]}
    assert render(" ${{ row.n }}", n=3) == " 3"  # not the whole string: text


def test_values_inside_text_read_as_json_writes_them() -> None:
    text = "${{ row.s }}|${{ row.i }}|${{ row.f }}|${{ row.b }}|${{ row.z }}|${{ row.l }}"
    got = render(text, s="hé", i=3, f=0.5, b=True, z=None, l={"k": [1, "x"]})
    assert got == 'hé|3|0.5|true||{"k":[1,"x"]}'


def test_bracket_lookups_reach_keys_that_are_not_identifiers() -> None:
    assert render("Q: ${{ row['question text'] }}", **{"question text": "why?"}) == "Q: why?"
    assert parse("${{ row['a b'] }}", ROW).lookups == (Lookup("row", "a b"),)


def test_a_key_named_like_a_dict_method_is_the_field_not_the_method() -> None:
    assert render("${{ row.items }} and ${{ row.keys }}", items="I", keys="K") == "I and K"


def test_strings_without_a_lookup_are_kept_exactly() -> None:
    assert parse("a\r\nb {{ x }}", ROW).render({}) == "a\r\nb {{ x }}"
    assert parse("plain", ROW).substitute({"matrix": {}}) == "plain"


def test_a_string_literal_writes_the_delimiters_as_text() -> None:
    assert render("${{ '${{' }} row.x }}") == "${{ row.x }}"


def test_substitute_fills_one_namespace_and_keeps_the_others_lookups() -> None:
    template = parse("${{ matrix.m }}: ${{ row.q }}", BOTH)
    partial = template.substitute({"matrix": {"m": "small"}})
    assert partial == "small: ${{ row.q }}"
    assert parse(partial, ROW).render({"row": {"q": "why"}}) == "small: why"
    assert parse("${{ matrix.n }}", BOTH).substitute({"matrix": {"n": 5}}) == 5


def test_substituted_text_that_looks_like_a_template_stays_text() -> None:
    partial = parse("${{ matrix.m }} ${{ row.q }}", BOTH).substitute(
        {"matrix": {"m": "${{ row.secret }} {% x %}"}}
    )
    assert parse(partial, ROW).render({"row": {"q": "Q"}}) == "${{ row.secret }} {% x %} Q"


def test_unknown_keys_name_the_known_ones() -> None:
    with pytest.raises(TemplateError, match=r"unknown row field 'x' \(known: a, b\)"):
        render("${{ row.x }}", a=1, b=2)
    with pytest.raises(TemplateError, match=r"unknown matrix key 'h' \(known: model\)"):
        parse("${{ matrix.h }}", ("matrix",)).render({"matrix": {"model": "m"}})


def test_canonical_spells_every_lookup_one_way() -> None:
    spellings = ["a ${{row.q}} b", "a ${{ row.q }} b", "a ${{  row['q']  }} b"]
    assert {parse(s, ROW).canonical() for s in spellings} == {"a ${{ row.q }} b"}


# -- what is refused -------------------------------------------------------------------

HOSTILE = [
    ("${{ row.__class__ }}", "keys starting with '_' are not allowed"),
    ("${{ row['__class__'] }}", "keys starting with '_' are not allowed"),
    ("${{ row.q.__class__.__mro__ }}", "nested lookups"),
    ("${{ ''.__class__ }}", "nested lookups"),
    ("${{ row.q|attr('__class__') }}", r"filters \(\|\)"),
    ("${{ cycler.__init__.__globals__ }}", "nested lookups"),
    ("${{ lipsum() }}", "calls"),
    ("${{ row.q() }}", "calls"),
    ("${{ range(10**9) }}", "calls"),
    ("${{ row.q * 1000000000 }}", "operators"),
    ("${{ row.q ~ row.q }}", r"concatenation"),
    ("${{ row.q if row.q else 1 }}", "conditional expressions"),
    ("${{ row[row.q] }}", "nested or computed lookups"),
    ("${{ 7 }}", "literals other than strings"),
    ("${{ [1, 2] }}", "literals other than strings"),
    ("${{ self }}", "unknown name 'self'"),
    ("${{ config.x }}", "unknown name 'config'"),
    ("${{ row }}", "'row' alone is not a value"),
    ("${{ matrix.model }}", r"'matrix' is not available here \(this job has no matrix:\)"),
    ("{% for i in range(10) %}x{% endfor %}", r"template blocks \(\{% … %\}\)"),
    ("${{ row.q }}{% include '/etc/passwd' %}", r"template blocks"),
    ("{# a comment #}${{ row.q }}", r"comments \(\{# … #\}\)"),
    ("{{ row.q }}", r"is not a lookup: write \$\{\{ row.q \}\}"),
    ("${{ row.q ", "invalid template"),
    ("${{ " + "(" * 3000 + "row.q" + ")" * 3000 + " }}", "nested too deeply"),
    ("${{ row.node-version }}", r"for a key with '-', write row\['a-key'\]"),
]


@pytest.mark.parametrize(("text", "message"), HOSTILE, ids=[t[:30] for t, _ in HOSTILE])
def test_hostile_or_unsupported_templates_are_refused_with_a_reason(
    text: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        parse(text, ROW)


def test_a_template_whose_output_would_be_huge_is_refused() -> None:
    big = "x" * (1024 * 1024)
    template = parse(" ".join(["${{ row.big }}"] * 20), ROW)
    with pytest.raises(TemplateError, match="renders to more than"):
        template.render({"row": {"big": big}})
    with pytest.raises(TemplateError, match="renders to more than"):
        parse(" ".join(["${{ matrix.big }}"] * 20) + " ${{ row.q }}", BOTH).substitute(
            {"matrix": {"big": big}}
        )


def test_an_overlong_template_is_refused_before_parsing() -> None:
    with pytest.raises(TemplateError, match="longer than"):
        parse("${{ row.q }}" + "x" * templates.MAX_TEMPLATE_CHARS, ROW)


def test_the_engine_is_a_sandbox_without_a_loader() -> None:
    from jinja2.sandbox import SandboxedEnvironment

    env = templates._environment()
    assert isinstance(env, SandboxedEnvironment)
    assert env.loader is None
    # Blocks cannot be opened: their delimiters are a random token no template holds.
    assert len(env.block_start_string) > 30
    assert "{%" not in env.block_start_string


# -- properties ------------------------------------------------------------------------

_text = st.text(alphabet=st.sampled_from(list("ab $}{%#'\\\n\t\"é")), max_size=12)
_key = st.sampled_from(["q", "id", "a b", "items", "x-y"])
_value = st.one_of(
    st.text(max_size=8),
    st.integers(-5, 5),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.none(),
    st.lists(st.integers(0, 3), max_size=2),
)


def _spell(key: str) -> str:
    return f"row.{key}" if key.isidentifier() else f"row[{key!r}]"


@st.composite
def _templates(draw: st.DrawFn) -> tuple[str, list[str | str]]:
    parts: list[str] = draw(st.lists(st.one_of(_text, _key.map(lambda k: "\0" + k)), max_size=5))
    source = "".join(
        f"${{{{ {_spell(p[1:])} }}}}" if p.startswith("\0") else templates.escape(p) for p in parts
    )
    return source, parts


_ROWS = st.fixed_dictionaries(dict.fromkeys(["q", "id", "a b", "items", "x-y"], _value))


@given(_templates(), _ROWS)
def test_the_engine_renders_what_the_segments_say(
    case: tuple[str, list[str]], row: dict[str, Any]
) -> None:
    source, parts = case
    parts = [p for p in parts if p]
    template = parse(source, ROW)
    expected_parts = [
        row[p[1:]] if p.startswith("\0") else p.replace("\r\n", "\n").replace("\r", "\n")
        for p in parts
    ]
    lookups = [p for p in parts if p.startswith("\0")]
    rendered = template.render({"row": row})
    if len(parts) == 1 and lookups:
        assert rendered == row[lookups[0][1:]]  # a whole lookup keeps its type
        return
    assert rendered == "".join(
        templates.as_text(v) if p.startswith("\0") else v
        for p, v in zip(parts, expected_parts, strict=True)
    )
    # Substituting the same values segment by segment gives the same text.
    assert template.substitute({"row": row}) == rendered


@given(_templates())
def test_canonical_text_parses_back_to_the_same_template(case: tuple[str, list[str]]) -> None:
    template = parse(case[0], ROW)
    again = parse(template.canonical(), ROW)
    assert again.segments == template.segments
    assert again.canonical() == template.canonical()


@given(st.text(max_size=20))
def test_escaped_text_renders_to_itself(text: str) -> None:
    escaped = templates.escape(text)
    if not templates.is_template(escaped):
        return  # not a template at all: kept exactly, whatever it holds
    assert parse(escaped, ROW).render({"row": {}}) == text.replace("\r\n", "\n").replace("\r", "\n")
