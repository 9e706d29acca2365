"""Safe YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets positions, silently keeps the last of two equal keys, and
expands aliases without limit. Here a document is *composed* into PyYAML's node graph
(which keeps line and column marks) and converted to plain JSON-like values by our own
code, which:

- constructs only JSON-like scalars (str, int, float, bool, null; timestamps stay strings)
  and refuses every other tag (``!!python/...``, ``!!binary``, ``!!set``, custom tags);
- reports duplicate keys (PyYAML keeps the last one without a word);
- turns scalar keys into their source text (``123:`` is the key "123", as JSON needs);
- supports ``<<`` merge keys;
- bounds nesting depth, alias expansion ("billion laughs") and file size, so hostile
  input fails fast with a clear message instead of exhausting memory or the stack.

A :class:`YamlDoc` keeps the node graph so that a problem found later (by the JSON Schema,
by the loader) can be located: :meth:`YamlDoc.locate` walks the nodes along a field path.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from reconciler.errors import Location, Problem

MAX_YAML_BYTES: Final = 16 * 1024 * 1024
MAX_DEPTH: Final = 64
# Values reached through aliases beyond the document's own nodes. Generous for real reuse
# (anchors on request bodies), fatal for alias bombs, whose expansion is exponential.
MAX_ALIAS_EXPANSION: Final = 100_000

PathElem = str | int
FieldPath = tuple[PathElem, ...]

_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL, _TIMESTAMP = (
    _TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")
)
_MAP, _SEQ, _MERGE = _TAG + "map", _TAG + "seq", _TAG + "merge"


def format_path(path: Sequence[PathElem]) -> str:
    """``("jobs", "x", "requests", 0, "body")`` -> ``jobs.x.requests[0].body``."""
    out = ""
    for elem in path:
        if isinstance(elem, int):
            out += f"[{elem}]"
        else:
            out += f".{elem}" if out else elem
    return out


class _Refused(Exception):
    """Composing stopped: the document is hostile or too deep."""

    def __init__(self, mark: Any, message: str) -> None:
        super().__init__(message)
        self.mark = mark
        self.message = message


class _BoundedComposer(Composer):
    """PyYAML's Python composer, with a depth limit (it recurses in Python)."""

    peek_event: Callable[[], yaml.Event]  # provided by the parser mixed in below

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(
                    self.peek_event().start_mark,
                    f"nesting deeper than {MAX_DEPTH} levels is not supported",
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _PyLoader(_BoundedComposer, Parser, Scanner, Reader, Resolver):
    def __init__(self, text: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        Resolver.__init__(self)


_Loader: Callable[[str], Any] = _PyLoader
try:  # libyaml parses and composes several times faster
    from yaml._yaml import CParser

    class _CLoader(CParser, Resolver):
        """libyaml's parser and composer (in C: no Python recursion; libyaml itself stops
        at 1,000 levels, and the converter at MAX_DEPTH)."""

        def __init__(self, text: str) -> None:
            CParser.__init__(self, text)
            Resolver.__init__(self)

    _Loader = _CLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    pass


_SCALARS: Final = SafeConstructor()


def _loc(file: str, mark: Any) -> Location:
    """``mark`` is a PyYAML or libyaml mark (both have 0-based line and column)."""
    if mark is None:
        return Location(file)
    return Location(file, mark.line + 1, mark.column + 1)


@dataclass
class YamlDoc:
    """One parsed YAML file: its plain value, and the node graph to locate paths in."""

    file: str  # as shown to the user
    value: Any
    node: Node
    # Values already reported (an unsupported tag, NaN) and replaced by None: later checks
    # of these paths would only repeat the problem.
    bad_paths: tuple[FieldPath, ...] = ()

    def _children(self, node: MappingNode) -> Iterator[tuple[Node, Node]]:
        """Key/value node pairs of a mapping, own keys first, then merged ones."""
        merges: list[Node] = []
        for key, value in node.value:
            if key.tag == _MERGE:
                merges.append(value)
            else:
                yield key, value
        for merged in merges:
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if isinstance(source, MappingNode):
                    yield from self._children(source)

    def _walk(self, path: Sequence[PathElem]) -> tuple[Node, Node | None, int]:
        """The deepest node along ``path``, the key node naming it (if any), and how many
        path elements were matched."""
        node, key_node = self.node, None
        for depth, elem in enumerate(path):
            found: tuple[Node | None, Node] | None = None
            if isinstance(node, MappingNode) and isinstance(elem, str):
                for k, v in self._children(node):
                    if isinstance(k, ScalarNode) and k.value == elem:
                        found = (k, v)
                        break
            elif (
                isinstance(node, SequenceNode)
                and isinstance(elem, int)
                and 0 <= elem < len(node.value)
            ):
                found = (None, node.value[elem])
            if found is None:
                return node, key_node, depth
            key_node, node = found
        return node, key_node, len(path)

    def locate(self, path: Sequence[PathElem]) -> Location:
        """Where the value at ``path`` starts (or its deepest existing parent)."""
        node, _, _ = self._walk(path)
        return _loc(self.file, node.start_mark)

    def locate_key(self, path: Sequence[PathElem]) -> Location:
        """Where the key naming the value at ``path`` is (the value itself for list items;
        the deepest existing parent when the path does not exist)."""
        node, key_node, matched = self._walk(path)
        if matched == len(path) and key_node is not None:
            return _loc(self.file, key_node.start_mark)
        return _loc(self.file, node.start_mark)

    def scalar_text(self, path: Sequence[PathElem]) -> str | None:
        """The source text of the scalar at ``path`` (``yes``, ``0x10``), if it is one."""
        node, _, matched = self._walk(path)
        if matched == len(path) and isinstance(node, ScalarNode):
            return str(node.value)
        return None


_SURROGATE: Final = "contains a lone surrogate escape (\\ud800-\\udfff): not valid Unicode"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _Converter:
    """Node graph -> plain values, collecting problems instead of stopping at the first."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self.bad_paths: list[FieldPath] = []  # values replaced by None after a problem
        self.expanding = 0  # > 0 while converting a container reached again (an alias)
        self.expanded = 0  # values converted that way
        self.stack: list[Node] = []  # the containers being converted, outermost first
        self.open: set[int] = set()  # ids of self.stack, for cycles
        self.seen: set[int] = set()  # ids of containers converted at least once

    def problem(self, mark: Any, path: FieldPath, message: str, *, bad: bool = False) -> None:
        self.problems.append(Problem(_loc(self.file, mark), format_path(path), message))
        if bad:
            self.bad_paths.append(path)

    def _alias_site(self) -> Any:
        """Where the outermost alias being expanded is used: the container holding it (the
        node graph keeps no mark of the alias itself, only of its anchor)."""
        for parent, child in itertools.pairwise(self.stack):
            if id(child) in self.seen and child is not parent:
                return parent.start_mark
        return self.stack[-1].start_mark if self.stack else None

    def convert(self, node: Node, path: FieldPath) -> Any:
        if self.expanding:
            self.expanded += 1
            if self.expanded > MAX_ALIAS_EXPANSION:
                raise _Refused(
                    self._alias_site(),
                    f"aliases expand to more than {MAX_ALIAS_EXPANSION:,} values (an alias"
                    " bomb?); write the values out, or share them through defaults:",
                )
        if len(path) >= MAX_DEPTH:  # the root is level 1
            raise _Refused(
                node.start_mark, f"nesting deeper than {MAX_DEPTH} levels is not supported"
            )
        if isinstance(node, ScalarNode):
            return self.scalar(node, path)
        if id(node) in self.open:
            raise _Refused(node.start_mark, "an alias refers to a value that contains it")
        if node.tag not in (_SEQ, _MAP):
            self.problem(node.start_mark, path, f"unsupported YAML tag {_tag(node.tag)}", bad=True)
            return None
        alias = id(node) in self.seen
        self.expanding += alias
        self.stack.append(node)
        self.open.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.convert(item, (*path, i)) for i, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            return self.mapping(node, path)
        finally:
            self.stack.pop()
            self.open.discard(id(node))
            self.seen.add(id(node))
            self.expanding -= alias

    def scalar(self, node: ScalarNode, path: FieldPath) -> Any:
        tag = node.tag
        if tag in (_STR, _TIMESTAMP):  # JSON has no dates: keep what was written
            if not node.value.isascii() and not _encodable(node.value):
                self.problem(node.start_mark, path, _SURROGATE, bad=True)
                return None
            return node.value
        if tag in (_INT, _FLOAT, _BOOL, _NULL):
            try:
                value = _SCALARS.construct_object(node, deep=False)
            except (ValueError, yaml.YAMLError) as err:
                self.problem(node.start_mark, path, f"invalid {_tag(tag)}: {err}", bad=True)
                return None
            if isinstance(value, float) and not math.isfinite(value):
                message = "must be a finite number (JSON has no NaN or infinity)"
                self.problem(node.start_mark, path, message, bad=True)
                return None
            return value
        self.problem(node.start_mark, path, f"unsupported YAML tag {_tag(tag)}", bad=True)
        return None

    def key(self, node: Node, path: FieldPath) -> str | None:
        if isinstance(node, ScalarNode) and node.tag in (_STR, _INT, _FLOAT, _BOOL, _NULL):
            if not node.value.isascii() and not _encodable(node.value):
                self.problem(node.start_mark, path, _SURROGATE)
                return None
            return str(node.value)
        self.problem(node.start_mark, path, "mapping keys must be plain strings")
        return None

    def mapping(self, node: MappingNode, path: FieldPath) -> dict[str, Any]:
        out: dict[str, Any] = {}
        seen: dict[str, yaml.Mark] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            if key in seen:
                first = seen[key]
                self.problem(
                    key_node.start_mark,
                    (*path, key),
                    f"duplicate key {key!r} (first at line {first.line + 1});"
                    " YAML keeps only one of them",
                )
                continue
            seen[key] = key_node.start_mark
            out[key] = self.convert(value_node, (*path, key))
        for merged in merges:  # own keys win, then earlier merge sources win
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.problem(source.start_mark, path, "'<<' must merge a mapping")
                    continue
                for k, v in self.convert(source, path).items():
                    out.setdefault(k, v)
        return out


@dataclass
class YamlResult:
    doc: YamlDoc | None  # None when the file could not be parsed at all, or is empty
    problems: list[Problem]
    empty: bool = False  # no document at all (nothing, or only comments)


def _decode(data: bytes, file: str) -> tuple[str | None, Problem | None]:
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        bad = data[err.start : err.start + 1].hex()
        return None, Problem(
            Location(file, line, column), "", f"not valid UTF-8 (byte 0x{bad}); save as UTF-8"
        )


def _tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _syntax(err: yaml.MarkedYAMLError, text: str) -> str:
    problem, context = err.problem or "", err.context or ""
    if "another document" in problem:
        return "a file holds one YAML document, but this starts a second one ('---')"
    message = f"invalid YAML: {problem or context}"
    mark = err.problem_mark
    if problem == "found undefined alias" and mark is not None:  # libyaml omits the name
        name = re.match(r"\*([^\s,\[\]{}]+)", text[mark.index :])
        message += f" {name.group(1)!r}" if name else ""
    if problem and context:
        where = f" at line {err.context_mark.line + 1}" if err.context_mark else ""
        message += f" ({context}{where})"
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        message += "; indent with spaces, not tabs"
    return message


def parse_text(text: str, file: str, *, pure: bool = False) -> YamlResult:
    """Parse one YAML document held in ``text``; ``file`` is how problems name it.
    ``pure`` uses PyYAML's Python parser even when libyaml is there (for tests)."""
    loader: Any = _PyLoader(text) if pure else _Loader(text)
    try:
        node = loader.get_single_node()
    except _Refused as err:
        return YamlResult(None, [Problem(_loc(file, err.mark), "", err.message)])
    except yaml.MarkedYAMLError as err:
        return YamlResult(None, [Problem(_loc(file, err.problem_mark), "", _syntax(err, text))])
    except yaml.YAMLError as err:  # pragma: no cover - every PyYAML error is marked
        return YamlResult(None, [Problem(Location(file), "", f"invalid YAML: {err}")])
    finally:
        loader.dispose()
    if node is None or (isinstance(node, ScalarNode) and node.tag == _NULL and not node.value):
        return YamlResult(None, [], empty=True)  # nothing, comments, or a bare '---'
    converter = _Converter(file)
    try:
        value = converter.convert(node, ())
    except _Refused as err:
        return YamlResult(None, [Problem(_loc(file, err.mark), "", err.message)])
    doc = YamlDoc(file, value, node, tuple(converter.bad_paths))
    return YamlResult(doc, converter.problems)


def parse_file(path: Path, file: str, *, max_bytes: int = MAX_YAML_BYTES) -> YamlResult:
    """Read and parse ``path`` (at most ``max_bytes``); ``file`` is how problems name it."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError as err:
        return YamlResult(None, [Problem(Location(file), "", f"cannot read: {err.strerror}")])
    if len(data) > max_bytes:
        return YamlResult(
            None,
            [
                Problem(
                    Location(file),
                    "",
                    f"file is larger than {max_bytes // (1024 * 1024)} MB; move large request"
                    " lists into a JSONL file named under inputs:",
                )
            ],
        )
    text, problem = _decode(data, file)
    if text is None:
        assert problem is not None
        return YamlResult(None, [problem])
    return parse_text(text, file)
