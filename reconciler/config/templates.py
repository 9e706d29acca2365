"""``${{ … }}`` templates: parsed by Jinja2's sandbox, restricted to plain lookups.

A template is a string holding ``${{ NAMESPACE.KEY }}`` expressions (``matrix.model``,
``row.question``); everything else in it is literal text. The engine is Jinja2's
:class:`~jinja2.sandbox.SandboxedEnvironment` with ``${{``/``}}`` as its variable
delimiters, :class:`~jinja2.StrictUndefined`, no loader (so no file can ever be read) and
block/comment delimiters set to a random token no template can contain. On top of the
sandbox, every parsed template is checked node by node; only these expressions pass:

- ``NS.KEY`` and ``NS['KEY']`` (for a key that is not an identifier, e.g. a CSV header
  with a space), where ``NS`` is a namespace the field allows and ``KEY`` does not start
  with ``_``;
- a string literal, ``${{ '${{' }}``: the way to write the delimiters as text.

Filters, calls, arithmetic, tests, nested lookups (``matrix.cfg.model``), and ``{% … %}``
blocks or ``{# … #}`` comments anywhere in the text are refused with a message saying so.
So a template's output is its literal text plus the values it looks up: it cannot loop,
recurse, read a file or reach a Python attribute, and its size is bounded anyway
(:data:`MAX_RENDERED_CHARS`).

Values keep their JSON types where a whole string is one lookup (``max_tokens:
${{ row.n }}`` stays an integer). Inside a longer string a value becomes text:
strings as they are, numbers and booleans as JSON writes them (``0.7``, ``true``), null
as an empty string, lists and mappings as compact JSON.

Line breaks inside a template string are normalised to ``\\n`` (Jinja's lexer does so; YAML
already does it for block scalars). Strings without ``${{`` are not templates and are
kept exactly as written.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from jinja2 import Template as JinjaTemplate
    from jinja2.sandbox import SandboxedEnvironment

OPEN: Final = "${{"
CLOSE: Final = "}}"
MAX_TEMPLATE_CHARS: Final = 1_000_000  # one template string as written
MAX_RENDERED_CHARS: Final = 16 * 1024 * 1024  # one rendered string
_IDENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Jinja's own syntax in literal text: refused, so that nobody expects it to run.
_BLOCK: Final = re.compile(r"\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_BARE: Final = re.compile(r"(?<!\$)\{\{\s*(matrix|row)\b[^}]*\}\}")


class TemplateError(ValueError):
    """A template that cannot be used, or a value it cannot produce."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Lookup:
    """``${{ namespace.key }}``."""

    namespace: str
    key: str

    def __str__(self) -> str:
        if _IDENT.match(self.key):
            return f"{self.namespace}.{self.key}"
        return f"{self.namespace}[{_literal(self.key)}]"


Segment = str | Lookup  # literal text, or a lookup


@dataclass(frozen=True)
class Template:
    """A parsed template string: literal text and lookups, in order."""

    source: str
    segments: tuple[Segment, ...]

    @property
    def whole(self) -> Lookup | None:
        """The lookup when the whole string is exactly one expression (its value keeps
        its JSON type), else None."""
        if len(self.segments) == 1 and isinstance(self.segments[0], Lookup):
            return self.segments[0]
        return None

    @property
    def lookups(self) -> tuple[Lookup, ...]:
        return tuple(s for s in self.segments if isinstance(s, Lookup))

    def canonical(self) -> str:
        """The template written one way (``${{ ns.key }}``, literals escaped): two
        spellings of one template give the same text, so digests ignore spelling."""
        return "".join(
            f"{OPEN} {s} {CLOSE}" if isinstance(s, Lookup) else escape(s) for s in self.segments
        )

    def render(self, context: Mapping[str, Mapping[str, Any]]) -> Any:
        """The value of this template in ``context`` (namespace -> key -> value)."""
        whole = self.whole
        if whole is not None:
            return _value(whole, context)
        if not self.lookups:  # literal text (string literals included): as parsed
            return "".join(s for s in self.segments if isinstance(s, str))
        for lookup in self.lookups:
            _value(lookup, context)  # a clear error before the engine's own
        return _render_with_engine(self.source, context)

    def substitute(self, context: Mapping[str, Mapping[str, Any]]) -> Any:
        """Fill in the namespaces present in ``context`` and keep the others' lookups as
        template text (``matrix`` now, ``row`` later, per row). A whole-string lookup
        of a filled namespace keeps its type; the result is a plain string (no longer a
        template) when nothing is left to fill."""
        whole = self.whole
        if whole is not None and whole.namespace in context:
            return _value(whole, context)
        if not any(isinstance(s, Lookup) and s.namespace not in context for s in self.segments):
            return self.render(context)
        parts: list[str] = []
        size = 0
        for segment in self.segments:
            if isinstance(segment, Lookup) and segment.namespace not in context:
                part = f"{OPEN} {segment} {CLOSE}"
            elif isinstance(segment, Lookup):
                part = escape(as_text(_value(segment, context)))
            else:
                part = escape(segment)
            size += len(part)
            if size > MAX_RENDERED_CHARS:
                raise TemplateError(_too_long())
            parts.append(part)
        return "".join(parts)


def is_template(text: str) -> bool:
    return OPEN in text


def escape(text: str) -> str:
    """``text`` as template source that renders to exactly ``text``."""
    if OPEN not in text and "{%" not in text and "{#" not in text:
        return text
    return re.sub(r"\$\{\{|\{%|\{#", lambda m: f"{OPEN} {_literal(m.group())} {CLOSE}", text)


def as_text(value: Any) -> str:
    """How a value reads inside a longer string."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _literal(text: str) -> str:
    """A Jinja string literal for ``text`` (Python's repr is one)."""
    return repr(text)


def _too_long() -> str:
    return f"renders to more than {MAX_RENDERED_CHARS:,} characters"


def _value(lookup: Lookup, context: Mapping[str, Mapping[str, Any]]) -> Any:
    values = context.get(lookup.namespace)
    if values is None:
        raise TemplateError(f"'{lookup.namespace}' is not available here")
    if lookup.key not in values:
        known = ", ".join(sorted(values)) or "none"
        what = "field" if lookup.namespace == "row" else "key"
        raise TemplateError(f"unknown {lookup.namespace} {what} {lookup.key!r} (known: {known})")
    return values[lookup.key]


# -- parsing ---------------------------------------------------------------------------


def parse(text: str, namespaces: Collection[str]) -> Template:
    """Parse and check ``text``; ``namespaces`` are the names its lookups may use.

    Raises TemplateError saying what is refused and why."""
    return _parse(text, frozenset(namespaces))


@lru_cache(maxsize=8192)
def _parse(text: str, namespaces: frozenset[str]) -> Template:
    from jinja2 import TemplateSyntaxError, nodes  # noqa: PLC0415

    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateError(f"template is longer than {MAX_TEMPLATE_CHARS:,} characters")
    if not is_template(text):
        check_literal(text)
        return Template(text, (text,) if text else ())
    try:
        tree = _environment().parse(text)
    except TemplateSyntaxError as err:
        raise TemplateError(f"invalid template: {err.message}") from None
    except RecursionError:
        raise TemplateError("invalid template: nested too deeply") from None
    segments: list[Segment] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):  # pragma: no cover - blocks are refused above
            raise TemplateError(f"only {OPEN} … {CLOSE} lookups are supported")
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                check_literal(child.data)
                segments.append(child.data)
            else:
                segments.append(_expression(child, namespaces))
    merged: list[Segment] = []
    for segment in segments:  # adjacent text (a literal between two texts) is one text
        if isinstance(segment, str) and merged and isinstance(merged[-1], str):
            merged[-1] += segment
        elif segment != "":
            merged.append(segment)
    return Template(text, tuple(merged))


def check_literal(text: str) -> None:
    """Refuse Jinja syntax in literal text of a template field: it would not run."""
    if _BLOCK.search(text):
        raise TemplateError(
            "template blocks ({% … %}) and comments ({# … #}) are not supported, only"
            f" {OPEN} … {CLOSE} lookups; write {OPEN} '{{%' {CLOSE} for a literal '{{%'"
        )
    bare = _BARE.search(text)
    if bare:
        raise TemplateError(
            f"{bare.group()!r} is not a lookup: write {OPEN}{bare.group()[2:]}"
            f" (or {OPEN} '{{{{' {CLOSE} for a literal '{{{{')"
        )


def _expression(node: Any, namespaces: frozenset[str]) -> Segment:
    from jinja2 import nodes  # noqa: PLC0415

    allowed = " or ".join(f"{n}.KEY" for n in sorted(namespaces)) or "nothing"
    if isinstance(node, nodes.Const) and isinstance(node.value, str):
        return node.value
    if isinstance(node, nodes.Getattr) and isinstance(node.node, nodes.Name):
        namespace, key = node.node.name, node.attr
    elif (
        isinstance(node, nodes.Getitem)
        and isinstance(node.node, nodes.Name)
        and isinstance(node.arg, nodes.Const)
        and isinstance(node.arg.value, str)
    ):
        namespace, key = node.node.name, node.arg.value
    elif isinstance(node, nodes.Name):
        if node.name in namespaces:
            raise TemplateError(f"'{node.name}' alone is not a value; write {node.name}.KEY")
        raise TemplateError(_unknown_name(node.name, namespaces, allowed))
    else:
        hint = ""
        if isinstance(node, nodes.Sub) and namespaces:
            hint = f"; for a key with '-', write {sorted(namespaces)[0]}['a-key']"
        raise TemplateError(
            f"not supported in templates: {_describe(node)}; only plain lookups ({allowed})"
            f" are{hint}"
        )
    if namespace not in namespaces:
        raise TemplateError(_unknown_name(namespace, namespaces, allowed))
    if key.startswith("_"):
        raise TemplateError(f"{namespace} keys starting with '_' are not allowed ({key!r})")
    return Lookup(namespace, key)


def _unknown_name(name: str, namespaces: frozenset[str], allowed: str) -> str:
    if name in ("matrix", "row"):
        where = (
            "this job has no matrix:"
            if name == "matrix"
            else "row values exist only in prompts.custom_id and prompts.body"
        )
        return f"'{name}' is not available here ({where})"
    return f"unknown name {name!r}; templates can only look up {allowed}"


def _describe(node: Any) -> str:
    from jinja2 import nodes  # noqa: PLC0415

    kinds: tuple[tuple[type[Any], str], ...] = (
        (nodes.Filter, "filters (|)"),
        (nodes.Test, "tests (is …)"),
        (nodes.Call, "calls"),
        (nodes.Getattr, "nested lookups"),
        (nodes.Getitem, "nested or computed lookups"),
        (nodes.Const, "literals other than strings"),
        (nodes.CondExpr, "conditional expressions"),
        (nodes.BinExpr, "operators"),
        (nodes.UnaryExpr, "operators"),
        (nodes.Compare, "comparisons"),
        (nodes.Concat, "concatenation (~)"),
        (nodes.Literal, "literals other than strings"),
    )
    for kind, words in kinds:
        if isinstance(node, kind):
            return words
    return f"{type(node).__name__} expressions"


# -- the engine ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _environment() -> SandboxedEnvironment:
    import jinja2  # noqa: PLC0415
    from jinja2.sandbox import SandboxedEnvironment  # noqa: PLC0415

    # Jinja needs block and comment delimiters; these are a random token per process, so
    # no template can open a block (and any "{%" or "{#" is refused before parsing).
    token = secrets.token_hex(16)
    return SandboxedEnvironment(
        variable_start_string=OPEN,
        variable_end_string=CLOSE,
        block_start_string=f"<{token}%",
        block_end_string=f"%{token}>",
        comment_start_string=f"<{token}#",
        comment_end_string=f"#{token}>",
        line_statement_prefix=None,
        line_comment_prefix=None,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=as_text,
        loader=None,
        cache_size=0,
        auto_reload=False,
    )


@lru_cache(maxsize=4096)
def _compiled(source: str) -> JinjaTemplate:
    return _environment().from_string(source)


class _Namespace:
    """A namespace's values as the engine sees them: keys only, no methods (a plain dict
    would answer ``row.items`` with its method)."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None


def _render_with_engine(source: str, context: Mapping[str, Mapping[str, Any]]) -> str:
    import jinja2  # noqa: PLC0415

    template = _compiled(source)
    values = {name: _Namespace(ns) for name, ns in context.items()}
    parts: list[str] = []
    size = 0
    try:
        for part in template.generate(values):
            size += len(part)
            if size > MAX_RENDERED_CHARS:
                raise TemplateError(_too_long())
            parts.append(part)
    except jinja2.TemplateError as err:  # pragma: no cover - lookups are checked first
        raise TemplateError(f"cannot render: {err.message}") from None
    return "".join(parts)


# -- value trees -----------------------------------------------------------------------

PathElem = str | int
Found = Callable[[tuple[PathElem, ...], str], None]  # (path, message): report a problem


def walk_strings(
    value: Any, path: tuple[PathElem, ...] = ()
) -> Iterator[tuple[tuple[PathElem, ...], str]]:
    """Every string in a JSON-like value, with its path (mapping values, not keys)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk_strings(item, (*path, i))


def substitute_tree(
    value: Any,
    context: Mapping[str, Mapping[str, Any]],
    namespaces: Collection[str],
    found: Found,
    path: tuple[PathElem, ...] = (),
) -> Any:
    """``value`` with every template string substituted (:meth:`Template.substitute`).
    A problem is reported through ``found`` and leaves the string as it was."""
    if isinstance(value, str):
        try:
            return parse(value, namespaces).substitute(context)
        except TemplateError as err:
            found(path, err.message)
            return value
    if isinstance(value, dict):
        return {
            k: substitute_tree(v, context, namespaces, found, (*path, k)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            substitute_tree(v, context, namespaces, found, (*path, i)) for i, v in enumerate(value)
        ]
    return value
