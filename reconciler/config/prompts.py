"""``prompts:``: requests generated from rows of data, one request per row.

    prompts:
      rows: data/cheese.jsonl          # JSONL or CSV (reconciler.config.rows)
      custom_id: q-${{ row.id }}
      body:
        max_tokens: ${{ row.max_tokens }}      # a whole-string lookup keeps its JSON type
        messages: [{role: user, content: "Question: ${{ row.question }}"}]

Every request is one JSONL line, ``{"custom_id": …, "body": …}`` (compact JSON, body keys
sorted, UTF-8, ending in ``\\n``): the same lines a hand-written input file holds, and the
common currency of every input source. The lines are a pure function of the rows' bytes,
their format and the templates, which is exactly what :class:`PromptSource` (and so the
job's digest) covers: the same spec always generates the same bytes.

Two passes use this module:

- :func:`check_rows`, at load time: streams the rows once, checks that every row is
  readable and has every field the templates use, and that custom_ids are non-empty and
  unique (spilling to SQLite beyond a bound, as input files do). It does not render the
  body, so its cost and its cache key depend only on the rows file, the custom_id
  template and the set of fields used: a matrix of many jobs over one rows file reads it
  once.
- :func:`iter_request_lines`, when requests are needed (apply, ``validate --explain``,
  the shard cutter): streams the rows again, renders each request, and checks at the end
  that the rows still hash to what the spec was made from.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from reconciler.config.model import LocalInput, PromptSource, canonical_json
from reconciler.config.rows import BadRow, RowFormat, RowsUnreadable, read_rows
from reconciler.config.templates import (
    Lookup,
    Template,
    TemplateError,
    as_text,
    is_template,
    parse,
)
from reconciler.errors import Location, Problem, ReconcilerError
from reconciler.inputs import MAX_LINE_BYTES, MAX_PROBLEMS_PER_FILE, CustomIdIndex

ROW: Final = "row"
PathElem = str | int
TemplatePath = tuple[PathElem, ...]  # inside prompts: ("custom_id",), ("body", "messages", 0)


class PromptError(ReconcilerError):
    """Requests could not be generated from a row (``file:line: message``)."""


class RowsChanged(ReconcilerError):
    """The rows file's bytes differ from what the spec was made from."""


@dataclass(frozen=True)
class RowTemplates:
    """A prompts entry's templates, parsed: ``body`` holds a :class:`Template` wherever
    the written body has a template string, plain values elsewhere."""

    custom_id: Template
    body: dict[str, Any]
    fields: dict[str, TemplatePath]  # row field -> the first template using it

    def canonical_body(self) -> dict[str, Any]:
        out: dict[str, Any] = _map(self.body, lambda t: t.canonical())
        return out

    def request(self, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """(custom_id, body) for one row's values; raises TemplateError."""
        context = {ROW: values}
        custom_id = custom_id_text(self.custom_id.render(context))
        body: dict[str, Any] = _map(self.body, lambda t: t.render(context))
        return custom_id, body

    def line(self, values: dict[str, Any]) -> bytes:
        """The request line for one row; raises TemplateError."""
        custom_id, body = self.request(values)
        try:
            line = (
                '{"custom_id":'
                + json.dumps(custom_id, ensure_ascii=False)
                + ',"body":'
                + canonical_json(body)
                + "}\n"
            ).encode()
        except UnicodeEncodeError:
            raise TemplateError(
                "holds a lone surrogate (\\ud800-\\udfff): not valid Unicode"
            ) from None
        if len(line) > MAX_LINE_BYTES:
            limit = MAX_LINE_BYTES // (1024 * 1024)
            raise TemplateError(f"generates a request longer than {limit} MB")
        return line


def custom_id_text(value: Any) -> str:
    """A rendered custom_id as the request carries it: a non-empty string."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        kind = "null" if value is None else type(value).__name__
        raise TemplateError(f"custom_id must be a string or a number, not {kind}")
    text = as_text(value)
    if not text:
        raise TemplateError("custom_id is empty")
    return text


def _map(value: Any, leaf: Callable[[Template], Any]) -> Any:
    if isinstance(value, Template):
        return leaf(value)
    if isinstance(value, dict):
        return {k: _map(v, leaf) for k, v in value.items()}
    if isinstance(value, list):
        return [_map(v, leaf) for v in value]
    return value


def compile_templates(
    custom_id: str, body: dict[str, Any]
) -> tuple[RowTemplates | None, list[tuple[TemplatePath, str]]]:
    """Parse a prompts entry's templates; (None, problems) when any is refused."""
    problems: list[tuple[TemplatePath, str]] = []
    fields: dict[str, TemplatePath] = {}

    def one(text: str, path: TemplatePath) -> Template | str:
        try:
            template = parse(text, (ROW,))
        except TemplateError as err:
            problems.append((path, err.message))
            return text
        for lookup in template.lookups:
            fields.setdefault(lookup.key, path)
        return template if is_template(text) else text

    def tree(value: Any, path: TemplatePath) -> Any:
        if isinstance(value, str):
            return one(value, path)
        if isinstance(value, dict):
            return {k: tree(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [tree(v, (*path, i)) for i, v in enumerate(value)]
        return value

    cid = one(custom_id, ("custom_id",))
    compiled_body = tree(body, ("body",))
    if problems:
        return None, problems
    cid_template = cid if isinstance(cid, Template) else parse(cid, (ROW,))
    return RowTemplates(cid_template, compiled_body, fields), []


def templates_of(source: PromptSource) -> RowTemplates:
    """The templates of a resolved spec (its canonical text parses back the same)."""
    templates, problems = compile_templates(source.custom_id, source.body)
    if templates is None:
        raise PromptError("; ".join(f"prompts.{_dotted(p)}: {m}" for p, m in problems))
    return templates


def _dotted(path: TemplatePath) -> str:
    out = ""
    for elem in path:
        out += f"[{elem}]" if isinstance(elem, int) else (f".{elem}" if out else elem)
    return out


# -- load time -------------------------------------------------------------------------


def check_rows(
    path: Path,
    fmt: RowFormat,
    templates: RowTemplates,
    *,
    rel: str,
    shown: str,
    field_name: Callable[[TemplatePath], str],
    max_problems: int = MAX_PROBLEMS_PER_FILE,
) -> tuple[LocalInput, list[Problem]]:
    """Check the rows of ``path`` against ``templates`` in one streaming pass; the
    LocalInput's ``lines`` is the number of rows (requests). ``field_name`` names a
    template path in messages."""
    sink = _Sink(shown, max_problems)
    sha = hashlib.sha256()
    size = [0]
    rows = 0
    fields = templates.fields
    whole_cid = templates.custom_id.whole
    missing_reported: set[str] = set()  # CSV: a missing column is reported once
    with CustomIdIndex() as ids:
        batch: list[str] = []
        try:
            for row in read_rows(path, fmt, sha, size):
                if isinstance(row, BadRow):
                    rows += 1
                    sink.add(Problem(Location(shown, row.line, row.column), "", row.message))
                    continue
                rows += 1
                values = row.values
                absent = [f for f in fields if f not in values]
                for name in absent:
                    if fmt == "csv":
                        if name not in missing_reported:
                            missing_reported.add(name)
                            sink.add(
                                Problem(
                                    Location(shown, 1),
                                    field_name(fields[name]),
                                    f"the header has no column {name!r}"
                                    f" (columns: {_names(values)})",
                                )
                            )
                        continue
                    sink.add(
                        Problem(
                            Location(shown, row.line),
                            field_name(fields[name]),
                            f"row has no field {name!r} (it has: {_names(values)})",
                        )
                    )
                if absent:
                    continue
                bad = _unencodable(values, fields)
                if bad is not None:
                    sink.add(
                        Problem(
                            Location(shown, row.line),
                            field_name(fields[bad]),
                            f"field {bad!r} holds a lone surrogate (\\ud800-\\udfff):"
                            " not valid Unicode",
                        )
                    )
                    continue
                try:
                    cid = _custom_id(templates, whole_cid, values)
                except TemplateError as err:
                    sink.add(
                        Problem(Location(shown, row.line), field_name(("custom_id",)), err.message)
                    )
                    continue
                batch.append(cid)
                if len(batch) >= 4096:
                    ids.add(batch)
                    batch = []
            ids.add(batch)
            exact, hashes = ids.suspects()
            if exact or hashes:  # a second pass names them (rare: a config error)
                for cid, line, first in _duplicates(path, fmt, templates, exact, hashes):
                    sink.add(_duplicate(shown, line, first, cid, field_name))
        except RowsUnreadable as err:
            sink.add(Problem(Location(shown, err.line), "", err.message))
            return LocalInput(rel, sha.hexdigest(), size[0], rows), sink.problems()
    if rows == 0:
        sink.add(Problem(Location(shown), "", "has no rows: expected one row per request"))
    return LocalInput(rel, sha.hexdigest(), size[0], rows), sink.problems()


def _custom_id(templates: RowTemplates, whole: Lookup | None, values: dict[str, Any]) -> str:
    if whole is not None:  # the common case, without the engine
        return custom_id_text(values[whole.key])
    return custom_id_text(templates.custom_id.render({ROW: values}))


def _duplicates(
    path: Path, fmt: RowFormat, templates: RowTemplates, exact: set[str], hashes: set[int]
) -> Iterator[tuple[str, int, int]]:
    """(custom_id, line, line of its first occurrence) of every later occurrence of a
    suspect id (exact, or one whose hash was seen twice: maybe only a collision)."""
    whole = templates.custom_id.whole
    first: dict[str, int] = {}
    for row in read_rows(path, fmt):
        if isinstance(row, BadRow) or any(f not in row.values for f in templates.fields):
            continue
        try:
            cid = _custom_id(templates, whole, row.values)
        except TemplateError:
            continue
        if cid not in exact and hash(cid) not in hashes:
            continue
        seen = first.setdefault(cid, row.line)
        if seen != row.line:
            yield cid, row.line, seen


def _duplicate(
    shown: str, line: int, first: int, cid: str, field_name: Callable[[TemplatePath], str]
) -> Problem:
    cid = cid if len(cid) <= 60 else cid[:57] + "..."
    return Problem(
        Location(shown, line),
        field_name(("custom_id",)),
        f"generates the custom_id {cid!r} again (first at line {first}); custom_ids must be"
        " unique within a job",
    )


def _names(values: dict[str, Any]) -> str:
    names = list(values)
    shown = ", ".join(names[:10])
    return shown + (f", … ({len(names)} in all)" if len(names) > 10 else "") or "none"


def _unencodable(values: dict[str, Any], fields: dict[str, TemplatePath]) -> str | None:
    for name in fields:
        value = values[name]
        if isinstance(value, str) and not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                return name
    return None


@dataclass
class _Sink:
    """The first ``cap`` problems in reading order, and a count of the others."""

    shown: str
    cap: int

    def __post_init__(self) -> None:
        self.kept: list[Problem] = []
        self.hidden = 0
        self.first_hidden: Location | None = None

    def add(self, problem: Problem) -> None:
        if len(self.kept) < self.cap:
            self.kept.append(problem)
            return
        self.hidden += 1
        if self.first_hidden is None or problem.location < self.first_hidden:
            self.first_hidden = problem.location

    def problems(self) -> list[Problem]:
        if not self.hidden:
            return list(self.kept)
        s = "s" if self.hidden != 1 else ""
        more = Problem(
            self.first_hidden or Location(self.shown),
            "",
            f"{self.hidden} more problem{s} from here on (not shown)",
        )
        return [*self.kept, more]


# -- generation ------------------------------------------------------------------------


def rows_path(root: Path, source: PromptSource) -> Path:
    """The rows file of ``source``, checked again to be a regular file inside ``root``
    (a spec may come from a saved plan file)."""
    root = root.resolve()
    path = (root / source.rows.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise PromptError(f"rows file {source.rows.path} is not a file inside {root}")
    return path


def iter_request_lines(root: Path, source: PromptSource) -> Generator[bytes, None, None]:
    """The generated requests of ``source``, one JSONL line (bytes ending in ``\\n``) per
    row, in row order, streaming in constant memory.

    Raises PromptError for a row that cannot be rendered (``file:line: why``), and
    RowsChanged after the last line when the rows no longer hash to ``source.rows``: a
    consumer keeps nothing it read from an iteration that raised."""
    path = rows_path(root, source)
    templates = templates_of(source)
    fmt: RowFormat = "csv" if source.format == "csv" else "jsonl"
    rel = source.rows.path
    sha = hashlib.sha256()
    count = 0
    try:
        for row in read_rows(path, fmt, sha):
            if isinstance(row, BadRow):
                raise PromptError(f"{rel}:{row.line}:{row.column}: {row.message}")
            try:
                line = templates.line(row.values)
            except TemplateError as err:
                raise PromptError(f"{rel}:{row.line}: {err.message}") from None
            count += 1
            yield line
    except RowsUnreadable as err:
        where = f"{rel}:{err.line}" if err.line else rel
        raise PromptError(f"{where}: {err.message}") from None
    actual = sha.hexdigest()
    if actual != source.rows.sha256 or count != source.rows.lines:
        raise RowsChanged(
            f"rows file {rel} changed since the plan was made (sha256"
            f" {source.rows.sha256[:12]}… planned, {actual[:12]}… now): plan again"
        )
