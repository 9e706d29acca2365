"""Matrix expansion of a parsed job file: the step between parsing and the schema check.

Every entry of ``jobs:`` with a ``matrix:`` becomes one job per combination
(:mod:`reconciler.config.matrix`), named by its templated name, with ``${{ matrix.KEY }}``
filled in in every string value (:mod:`reconciler.config.templates`); ``prompts.custom_id``
and ``prompts.body`` keep their ``${{ row.FIELD }}`` lookups for the rows. The result is
a :class:`ExpandedDoc`: the file as if every expanded job had been written out, whose
``locate`` maps each expanded job's paths back to its entry, so the schema check and the
loader point at the template's ``file:line:col``. ``labels`` names each expanded job by
its entry and combination (``qa-${{ matrix.model }} [model=mistral-small-latest]``) for
messages.

Strings of jobs without a matrix are not templates: a ``${{ matrix.…`` or ``${{ row.…``
lookup in one (outside prompts' templates and inline requests, which are content) is an
error, so that nobody ships a literal ``${{ matrix.model }}`` as a model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from yaml.nodes import Node

from reconciler.config import matrix as matrices
from reconciler.config import templates
from reconciler.config.yamlload import FieldPath, YamlDoc, format_path
from reconciler.errors import Problem

NAME_PATTERN: Final = re.compile(r"[a-z0-9._-]{1,63}\Z")
_ROW_FIELDS: Final = (("prompts", "custom_id"), ("prompts", "body"))


@dataclass
class ExpandedDoc(YamlDoc):
    """A YamlDoc whose ``jobs`` hold expanded jobs, located at their entries."""

    aliases: dict[str, str] = field(default_factory=dict)  # expanded name -> entry name

    def _walk(self, path: Sequence[str | int]) -> tuple[Node, Node | None, int]:
        if len(path) >= 2 and path[0] == "jobs" and isinstance(path[1], str):
            entry = self.aliases.get(path[1])
            if entry is not None:
                path = ("jobs", entry, *path[2:])
        return super()._walk(path)


@dataclass
class Expansion:
    doc: YamlDoc
    problems: list[Problem]
    labels: dict[str, str]  # expanded name -> "entry [combination]"
    expanded: int = 0  # jobs made from matrices


def _row_field(path: FieldPath) -> bool:
    return any(tuple(path[: len(p)]) == p for p in _ROW_FIELDS)


# A lookup left in a job without a matrix (inline requests are content, and may well
# mention "${{ matrix.os }}" in a question about CI: they are not looked at).
_STRAY: Final = re.compile(r"\$\{\{\s*(matrix|row)\b")


def stray_templates(value: Any, doc: YamlDoc, base: FieldPath, why: str) -> list[Problem]:
    """A problem for every ``${{ matrix.…`` or ``${{ row.…`` in ``value`` outside
    prompts' templates and inline requests."""
    problems = []
    for path, text in templates.walk_strings(value):
        if path[:1] == ("requests",):
            continue
        if _STRAY.search(text) and not _row_field(path):
            full = (*base, *path)
            problems.append(Problem(doc.locate(full), format_path(full), why))
    return problems


def expand_doc(doc: YamlDoc, *, templated: bool = True) -> Expansion:
    """Expand ``doc``'s matrix entries. ``templated`` False (the file's text holds no
    ``${{``) skips looking for stray templates, which would be a walk over every value."""
    value = doc.value
    jobs = value.get("jobs") if isinstance(value, dict) else None
    problems: list[Problem] = []
    if templated and isinstance(value, dict) and isinstance(value.get("defaults"), dict):
        problems += stray_templates(
            value["defaults"],
            doc,
            ("defaults",),
            "defaults are not templates (only prompts.custom_id and prompts.body use"
            " ${{ row.FIELD }}); put ${{ matrix.KEY }} in the job with the matrix:",
        )
    if not isinstance(jobs, dict) or not any(
        isinstance(v, dict) and "matrix" in v for v in jobs.values()
    ):
        if templated:
            problems += _strays(jobs, doc)
        return Expansion(doc, problems, {})
    out: dict[str, Any] = {}
    where: dict[str, str] = {}  # name -> what defined it in this file (for collisions)
    aliases: dict[str, str] = {}
    labels: dict[str, str] = {}
    bad_paths: list[FieldPath] = list(doc.bad_paths)
    expanded = 0
    for entry, job in jobs.items():
        if not (isinstance(job, dict) and "matrix" in job):
            problems += _strays({entry: job}, doc)
            if entry in where:
                problems.append(_collision(doc, entry, entry, where[entry], None))
                continue
            where[entry] = str(doc.locate_key(("jobs", entry)))
            out[entry] = job
            continue
        made = _expand_entry(doc, entry, job, problems)
        for name, combo_label, expanded_job in made:
            label = f"{entry} [{combo_label}]"
            if name in where:
                problems.append(_collision(doc, entry, name, where[name], label))
                continue
            where[name] = f"{doc.locate_key(('jobs', entry))} (by jobs.{label})"
            out[name] = expanded_job
            aliases[name] = entry
            labels[name] = label
            expanded += 1
            bad_paths += [("jobs", name, *p[2:]) for p in doc.bad_paths if p[:2] == ("jobs", entry)]
    new_value = {**value, "jobs": out}
    view = ExpandedDoc(doc.file, new_value, doc.node, tuple(bad_paths), aliases=aliases)
    return Expansion(view, problems, labels, expanded)


def _collision(doc: YamlDoc, entry: str, name: str, first: str, label: str | None) -> Problem:
    """``label`` names an expanded job (None: a job written out)."""
    path = ("jobs", entry)
    return Problem(
        doc.locate_key(path),
        f"jobs.{label}" if label else format_path(path),
        f"job {name!r} is already defined at {first}; job names must be unique across the"
        " config root",
    )


def _strays(jobs: Any, doc: YamlDoc) -> list[Problem]:
    if not isinstance(jobs, dict):
        return []
    problems: list[Problem] = []
    for name, job in jobs.items():
        if templates.is_template(name):
            path = ("jobs", name)
            problems.append(
                Problem(
                    doc.locate_key(path),
                    format_path(path),
                    "a templated job name needs a matrix: on the job",
                )
            )
        elif isinstance(job, dict):
            problems += stray_templates(
                job,
                doc,
                ("jobs", name),
                "${{ … }} needs a matrix: on this job (only prompts.custom_id and"
                " prompts.body take ${{ row.FIELD }} without one)",
            )
    return problems


def _expand_entry(
    doc: YamlDoc, entry: str, job: dict[str, Any], problems: list[Problem]
) -> list[tuple[str, str, Any]]:
    """(name, combination label, job value) of each combination of one entry."""
    base: FieldPath = ("jobs", entry)
    try:
        combos = matrices.expand(job["matrix"])
    except matrices.MatrixError as err:
        for p in err.problems:
            path = (*base, "matrix", *p.path)
            at = doc.locate_key(path) if p.at_key else doc.locate(path)
            problems.append(Problem(at, format_path(path), p.message))
        return []
    try:
        name_template = templates.parse(entry, ("matrix",))
    except templates.TemplateError as err:
        problems.append(Problem(doc.locate_key(base), format_path(base), err.message))
        return []
    rest = {k: v for k, v in job.items() if k != "matrix"}
    made: list[tuple[str, str, Any]] = []
    first_of: dict[str, str] = {}
    repeated: dict[tuple[FieldPath, str], list[str]] = {}
    for combo in combos:
        context = {"matrix": combo.values()}
        label = combo.label()
        try:
            name = templates.as_text(name_template.substitute(context))
        except templates.TemplateError as err:
            problems.append(
                Problem(doc.locate_key(base), f"jobs.{entry} [{label}]", f"name: {err.message}")
            )
            continue
        if not NAME_PATTERN.match(name):
            problems.append(
                Problem(
                    doc.locate_key(base),
                    f"jobs.{entry} [{label}]",
                    f"expands to the name {name!r}: job names use lowercase letters, digits,"
                    " '-', '_' and '.', 1 to 63 characters",
                )
            )
            continue
        if name in first_of:
            problems.append(
                Problem(
                    doc.locate_key(base),
                    f"jobs.{entry} [{label}]",
                    f"expands to the name {name!r}, as [{first_of[name]}] does; use every"
                    " matrix key that varies in the name",
                )
            )
            continue
        first_of[name] = label
        value, found = _fill(rest, {"matrix": combo.values()})
        for path, message in found:
            repeated.setdefault((path, message), []).append(label)
        if not found:
            made.append((name, label, value))
    # A template problem usually repeats in every combination: say it once, with a count.
    for (path, message), labels in repeated.items():
        full = (*base, *path)
        more = len(labels) - 1
        problems.append(
            Problem(
                doc.locate(full),
                f"jobs.{entry} [{labels[0]}]{_suffix(path)}",
                message
                + (f" (and in {more} more combination{'s' if more != 1 else ''})" if more else ""),
            )
        )
    return made


def _fill(
    rest: dict[str, Any], context: dict[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[tuple[FieldPath, str]]]:
    """One combination's job: every string value with the matrix filled in (prompts'
    templates keep their row lookups), and the problems found (path in the job)."""
    found: list[tuple[FieldPath, str]] = []

    def report(path: FieldPath, message: str) -> None:
        found.append((path, message))

    value: dict[str, Any] = {}
    for key, item in rest.items():
        if key == "prompts" and isinstance(item, dict):
            value[key] = {
                k: templates.substitute_tree(
                    v,
                    context,
                    ("matrix", "row") if k in ("custom_id", "body") else ("matrix",),
                    report,
                    (key, k),
                )
                for k, v in item.items()
            }
        else:
            value[key] = templates.substitute_tree(item, context, ("matrix",), report, (key,))
    return value, found


def _suffix(path: FieldPath) -> str:
    text = format_path(path)
    return text if text.startswith("[") else f".{text}"
