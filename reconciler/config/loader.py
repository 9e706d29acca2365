"""``load(root) -> DesiredState``: read a config root, check everything, report it all.

The steps, each collecting problems rather than stopping at the first:

1. ``reconciler.yaml`` (required) is parsed, its ``matrix:`` entries are expanded
   (:mod:`reconciler.config.expansion`), and it is checked against ``config.schema.json``;
2. the ``include`` globs (default ``jobs/**/*.yaml``) are expanded, sorted, and every job
   file is parsed, expanded and checked against ``jobs.schema.json``;
3. job names must be unique across ``reconciler.yaml`` and every job file;
4. ``defaults`` are merged under each job. A job's own fields win and ``metadata`` is merged
   key by key. ``model``/``agent_id`` are one group and ``inputs``/``input_files``/
   ``requests``/``prompts`` another: a job that sets any field of a group takes none of that group
   from ``defaults``, so an agent job is not broken by a default model;
5. after the merge each job needs an endpoint, exactly one of model/agent_id and exactly
   one input source; relative ``inputs`` are resolved against the file naming them, must be
   regular files inside the root, and are validated and hashed (:mod:`reconciler.inputs`);
   inline ``requests`` need unique custom_ids; ``prompts`` rows files are checked
   against their templates (:func:`reconciler.config.prompts.check_rows`), once per
   rows file and custom_id template however many jobs of a matrix share them.

Problems of a job expanded from a matrix are located at its entry and name the entry and
the combination (``jobs.qa-${{ matrix.model }} [model=mistral-small-latest].model``).

Any problem raises :class:`~reconciler.errors.ConfigError` with all of them, each at
``file:line:column`` (files shown relative to the working folder).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from reconciler import api
from reconciler.config import paths, rows
from reconciler.config.expansion import expand_doc
from reconciler.config.model import (
    DEFAULT_SERVER,
    DesiredState,
    JobSpec,
    Limits,
    LocalInput,
    OnChange,
    PriceOverride,
    PromptSource,
    Safety,
    canonical_json,
)
from reconciler.config.prompts import check_rows, compile_templates
from reconciler.config.schema import SchemaKind, validate_paths
from reconciler.config.yamlload import FieldPath, YamlDoc, format_path, parse_file
from reconciler.errors import ConfigError, Location, Problem
from reconciler.inputs import InputFile, JobInputs, check_job_inputs
from reconciler.stream import shards as stream_shards
from reconciler.stream.model import Shard
from reconciler.stream.sources import inline_positioned

CONFIG_FILE: Final = "reconciler.yaml"
DEFAULT_INCLUDE: Final = ("jobs/**/*.yaml",)
_GROUPS: Final = (("model", "agent_id"), ("inputs", "input_files", "requests", "prompts"))
_SOURCES: Final = _GROUPS[1]


def _mentions_templates(path: Path) -> bool:
    """Whether a YAML file's text holds ``${{`` (read again: a memchr-speed scan, far
    cheaper than walking every value of a file of 10,000 jobs)."""
    try:
        return b"${{" in path.read_bytes()
    except OSError:
        return True


def load(root: Path) -> DesiredState:
    """The desired state of the config root ``root`` (the folder holding reconciler.yaml).

    Raises ConfigError listing every problem found. Never touches the network."""
    state, problems = _Load(root).run()
    if problems or state is None:
        raise ConfigError(problems)
    return state


@dataclass
class _Doc:
    """One parsed YAML file and the field paths where its schema check failed."""

    doc: YamlDoc
    path: Path  # lexical absolute path of the file
    broken: list[FieldPath] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # expanded job -> entry [combination]

    def is_broken(self, prefix: FieldPath) -> bool:
        n = len(prefix)
        return any(p[:n] == prefix for p in self.broken)


@dataclass
class _Origin:
    """Where a job field's value was written: the job itself, or ``defaults``."""

    doc: _Doc
    path: FieldPath  # of the field's value in doc

    def locate(self, *more: str | int) -> Location:
        return self.doc.doc.locate((*self.path, *more))

    def field(self, *more: str | int) -> str:
        return format_path((*self.path, *more))


@dataclass
class _Job:
    name: str
    doc: _Doc
    value: Any

    @property
    def path(self) -> FieldPath:
        return ("jobs", self.name)

    @property
    def key(self) -> Location:
        return self.doc.doc.locate_key(self.path)


class _Load:
    def __init__(self, root: Path) -> None:
        self.root = Path(os.path.normpath(Path(root).absolute()))
        self.problems: list[Problem] = []
        self.files: list[str] = []
        self._input_cache: dict[tuple[InputFile, ...], JobInputs] = {}
        self.limits = Limits()  # read from reconciler.yaml before any job is resolved
        # rows file, format, custom_id template, fields used -> (rows, had problems)
        self._rows_cache: dict[tuple[Path, str, str, tuple[str, ...]], tuple[LocalInput, bool]] = {}
        self.labels: dict[str, str] = {}  # job name -> its matrix entry and combination
        self.final: set[Problem] = set()  # problems whose field needs no label

    def problem(self, location: Location, fld: str, message: str) -> None:
        self.problems.append(Problem(location, fld, message))

    # -- files ---------------------------------------------------------------------------

    def parse(self, path: Path, kind: SchemaKind) -> _Doc | None:
        shown = paths.shown(path)
        self.files.append(shown)
        result = parse_file(path, shown)
        self.problems.extend(result.problems)
        if result.empty:
            what = (
                "it needs at least 'version: 1' and 'workspace:'"
                if kind == "config"
                else "a job file maps job names under 'jobs:' (write 'jobs: {}' for none)"
            )
            self.problem(Location(shown, 1, 1), "", f"file is empty; {what}")
            return None
        if result.doc is None:
            return None
        if not isinstance(result.doc.value, dict):
            what = (
                "with 'version:', 'workspace:' and more"
                if kind == "config"
                else "with a 'jobs:' key holding job names"
            )
            kind_of = "a list" if isinstance(result.doc.value, list) else "a single value"
            self.problem(result.doc.locate(()), "", f"must be a mapping {what}, not {kind_of}")
            return None
        expansion = expand_doc(result.doc, templated=_mentions_templates(path))
        self.problems.extend(expansion.problems)
        self.final.update(expansion.problems)  # they name their combinations already
        doc = _Doc(expansion.doc, path, labels=expansion.labels)
        for fpath, problem in validate_paths(expansion.doc, kind):
            doc.broken.append(fpath)
            self.problems.append(problem)
        return doc

    def job_files(self, config: _Doc) -> list[Path]:
        raw = config.doc.value.get("include", None)
        explicit = "include" in config.doc.value
        if config.is_broken(("include",)):
            return []
        patterns: Sequence[str] = raw if explicit and raw is not None else DEFAULT_INCLUDE
        found: dict[str, Path] = {}
        config_real = (self.root / CONFIG_FILE).resolve()
        for i, pattern in enumerate(patterns):
            where = config.doc.locate(("include", i))
            bad = paths.glob_problem(pattern)
            if bad is not None:
                self.problem(where, f"include[{i}]", f"{pattern!r} {bad}")
                continue
            matches = paths.expand_glob(self.root, pattern)
            if not matches and explicit:
                self.problem(
                    where,
                    f"include[{i}]",
                    f"{pattern!r} matches no file (remove it if that is intended)",
                )
            for match in matches:
                real = match.resolve()
                if real == config_real:
                    continue  # reconciler.yaml's own jobs: are read anyway
                if not (real == self.root.resolve() or self.root.resolve() in real.parents):
                    self.problem(
                        Location(paths.shown(match)),
                        "",
                        "job file leads outside the config root through a symlink",
                    )
                    continue
                found.setdefault(match.relative_to(self.root).as_posix(), match)
        return [found[k] for k in sorted(found)]

    # -- jobs ----------------------------------------------------------------------------

    def collect(self, docs: Sequence[_Doc]) -> list[_Job]:
        jobs: list[_Job] = []
        seen: dict[str, _Job] = {}
        for doc in docs:
            table = doc.doc.value.get("jobs")
            if not isinstance(table, dict):
                continue
            for name, value in table.items():
                job = _Job(name, doc, value)
                first = seen.get(name)
                if first is not None:
                    label, first_label = doc.labels.get(name), first.doc.labels.get(name)
                    collision = Problem(
                        job.key,
                        f"jobs.{label}" if label else format_path(job.path),
                        f"job {name!r} is already defined at {first.key}"
                        + (f" (by jobs.{first_label})" if first_label else "")
                        + "; job names must be unique across the config root",
                    )
                    self.problems.append(collision)
                    self.final.add(collision)
                    continue
                seen[name] = job
                jobs.append(job)
                if name in doc.labels:
                    self.labels[name] = doc.labels[name]
        return jobs

    def merge(self, job: _Job, config: _Doc) -> tuple[dict[str, Any], dict[str, _Origin]]:
        """The job's fields with defaults merged under them, and where each came from."""
        own: dict[str, Any] = job.value
        defaults = config.doc.value.get("defaults")
        if not isinstance(defaults, dict):
            defaults = {}
        merged: dict[str, Any] = {}
        origins: dict[str, _Origin] = {}
        for key, value in defaults.items():
            group = next((g for g in _GROUPS if key in g), (key,))
            if any(k in own for k in group):
                continue
            merged[key] = value
            origins[key] = _Origin(config, ("defaults", key))
        for key, value in own.items():
            merged[key] = value
            origins[key] = _Origin(job.doc, (*job.path, key))
        metadata = {**(defaults.get("metadata") or {}), **(own.get("metadata") or {})}
        if metadata:
            merged["metadata"] = metadata
        return merged, origins

    def resolve(self, job: _Job, config: _Doc) -> JobSpec | None:
        if not isinstance(job.value, dict):
            return None
        if job.doc.is_broken(job.path) or config.is_broken(("defaults",)):
            self.check_inputs_only(job, config)
            return None
        spec, origins = self.merge(job, config)
        here = format_path(job.path)
        ok = True
        if "endpoint" not in spec:
            self.problem(job.key, f"{here}.endpoint", "missing (set it here or in defaults:)")
            ok = False
        if "model" not in spec and "agent_id" not in spec:
            self.problem(job.key, here, "needs a model or an agent_id (here or in defaults:)")
            ok = False
        if not any(k in spec for k in _SOURCES):
            self.problem(
                job.key,
                here,
                "needs an input source: inputs (local JSONL files), input_files (uploaded"
                " file ids), requests (inline) or prompts (generated from rows)",
            )
            ok = False
        checked = self.inputs(job, spec, origins)
        self.inline_requests(job, spec, origins)
        prompts = self.prompts(spec, origins) if "prompts" in spec else None
        if not ok or checked is None or ("prompts" in spec and prompts is None):
            return None
        inputs, shards = checked
        requests_json = None
        if "requests" in spec:
            requests_json = canonical_json(
                [
                    {k: v for k, v in r.items() if not (k == "custom_id" and v is None)}
                    for r in spec["requests"]
                ]
            )
            inline = self.inline_shards(job, spec, origins)
            if inline is None:
                return None
            shards = inline
        return JobSpec(
            name=job.name,
            endpoint=spec["endpoint"],
            model=spec.get("model"),
            agent_id=spec.get("agent_id"),
            inputs=inputs,
            input_files=tuple(spec.get("input_files") or ()),
            requests_json=requests_json,
            metadata=tuple(sorted((spec.get("metadata") or {}).items())),
            timeout_hours=int(spec.get("timeout_hours", api.TIMEOUT_HOURS_DEFAULT)),
            max_attempts=int(spec.get("max_attempts", 1)),
            on_change=OnChange(spec.get("on_change", OnChange.REPLACE.value)),
            prevent_destroy=bool(spec.get("prevent_destroy", False)),
            history_limit=(
                None if spec.get("history_limit") is None else int(spec["history_limit"])
            ),
            prompts=prompts,
            source=job.key,
            model_source=origins["model"].locate() if "model" in origins else None,
            model_field=origins["model"].field() if "model" in origins else "",
            shards=shards,
            origin=self.labels.get(job.name, ""),
        )

    def inline_shards(
        self, job: _Job, spec: Mapping[str, Any], origins: Mapping[str, _Origin]
    ) -> tuple[Shard, ...] | None:
        """Inline requests cut like inputs when they exceed the limits (None: a problem)."""
        requests = [
            {k: v for k, v in r.items() if not (k == "custom_id" and v is None)}
            for r in spec["requests"]
        ]
        lines = list(inline_positioned(requests))
        size = sum(len(line) for _, line in lines)
        limits = self.limits
        if not stream_shards.needs_split(
            len(lines), [size], limits.max_requests_per_job, limits.max_bytes_per_file
        ):
            return ()
        shards, too_large = stream_shards.cut(
            lines, limits.max_requests_per_job, limits.max_bytes_per_file
        )
        origin = origins["requests"]
        for big in too_large:
            i = big.at.line
            self.problem(
                origin.locate(i),
                origin.field(i),
                f"request is {big.size:,} bytes, more than limits.max_bytes_per_file"
                f" ({big.limit:,}): it fits in no shard",
            )
        return None if too_large else shards

    def check_inputs_only(self, job: _Job, config: _Doc) -> None:
        """A job with schema problems: still check its input files, when named properly."""
        spec, origins = self.merge(job, config)
        origin = origins.get("inputs")
        if origin is not None and not origin.doc.is_broken(origin.path):
            self.inputs(job, spec, origins)

    def inputs(
        self, job: _Job, spec: Mapping[str, Any], origins: Mapping[str, _Origin]
    ) -> tuple[tuple[LocalInput, ...], tuple[Shard, ...]] | None:
        """The job's local inputs, validated and hashed, and its shards when it must be
        split; None when any input is unusable."""
        refs = spec.get("inputs")
        if not refs:
            return (), ()
        origin = origins["inputs"]
        base = origin.doc.path.parent
        files: list[InputFile] = []
        seen: dict[str, int] = {}
        ok = True
        for i, ref in enumerate(refs):
            resolved = paths.resolve_inside(self.root, base, ref)
            if isinstance(resolved, str):
                self.problem(origin.locate(i), origin.field(i), resolved)
                ok = False
                continue
            real, rel = resolved
            if rel in seen:
                self.problem(
                    origin.locate(i),
                    origin.field(i),
                    f"{rel} is already listed as inputs[{seen[rel]}]",
                )
                ok = False
                continue
            seen[rel] = i
            files.append(InputFile(real, rel, paths.shown(self.root / rel)))
        if not ok:
            return None
        key = tuple(files)
        if key not in self._input_cache:
            self._input_cache[key] = check_job_inputs(files, limits=self.limits)
        checked = self._input_cache[key]
        self.problems.extend(checked.problems)
        return None if checked.problems else (checked.locals, checked.shards)

    def prompts(
        self, spec: Mapping[str, Any], origins: Mapping[str, _Origin]
    ) -> PromptSource | None:
        """The job's ``prompts:`` with its rows checked; None when anything is unusable."""
        value = spec["prompts"]
        origin = origins["prompts"]
        ok = True
        resolved = paths.resolve_inside(self.root, origin.doc.path.parent, value["rows"])
        if isinstance(resolved, str):
            message = resolved.replace("input files must", "rows files must")
            self.problem(origin.locate("rows"), origin.field("rows"), message)
            ok = False
        fmt = rows.row_format(value["rows"])
        if fmt is None:
            self.problem(
                origin.locate("rows"),
                origin.field("rows"),
                "rows files are JSONL (.jsonl) or CSV (.csv), named by their extension",
            )
            ok = False
        templates, found = compile_templates(value["custom_id"], value["body"])
        for path, message in found:
            self.problem(origin.locate(*path), origin.field(*path), message)
        if not ok or templates is None or isinstance(resolved, str) or fmt is None:
            return None
        real, rel = resolved
        custom_id = templates.custom_id.canonical()
        key = (real, fmt, custom_id, tuple(sorted(templates.fields)))
        if key not in self._rows_cache:
            local, problems = check_rows(
                real,
                fmt,
                templates,
                rel=rel,
                shown=paths.shown(self.root / rel),
                field_name=lambda path: origin.field(*path),
            )
            self._rows_cache[key] = (local, bool(problems))
            self.problems.extend(problems)  # once, even when many jobs share the rows
        local, failed = self._rows_cache[key]
        if failed:
            return None
        if local.lines > self.limits.max_requests_per_job:
            # Generated requests are not cut into shards yet (the shard cutter takes
            # request lines; wiring prompts into it is the next step): say so, rather
            # than let the API refuse the job at apply.
            self.problem(
                origin.locate("rows"),
                origin.field("rows"),
                f"{local.lines:,} rows: prompts jobs are not split into shards yet, so at most"
                f" limits.max_requests_per_job ({self.limits.max_requests_per_job:,}) rows",
            )
            return None
        if local.path != rel:  # the same bytes reached through another path
            local = LocalInput(rel, local.sha256, local.size, local.lines)
        return PromptSource(
            rows=local,
            format=fmt,
            custom_id=custom_id,
            body_json=canonical_json(templates.canonical_body()),
        )

    def inline_requests(
        self, job: _Job, spec: Mapping[str, Any], origins: Mapping[str, _Origin]
    ) -> None:
        requests = spec.get("requests")
        if not isinstance(requests, list):
            return
        origin = origins["requests"]
        first: dict[str, int] = {}
        for i, request in enumerate(requests):
            cid = request.get("custom_id") if isinstance(request, dict) else None
            if not isinstance(cid, str):
                continue
            if cid in first:
                line = origin.locate(first[cid], "custom_id").line
                self.problem(
                    origin.locate(i, "custom_id"),
                    origin.field(i, "custom_id"),
                    f"duplicate {cid!r} (first at line {line}); custom_ids must be unique"
                    " within a job",
                )
            else:
                first[cid] = i

    def prices(self, config: _Doc) -> tuple[tuple[str, PriceOverride], ...]:
        """``prices:`` as exact Decimals, sorted by model id (schema problems are already
        reported; an entry with no price at all is one more)."""
        table = config.doc.value.get("prices")
        if not isinstance(table, dict):
            return ()
        out = []
        for model, entry in table.items():
            path: FieldPath = ("prices", model)
            if not isinstance(entry, dict) or config.is_broken(path):
                continue
            if not entry:
                self.problem(
                    config.doc.locate(path),
                    format_path(path),
                    "give at least one price: input, output (USD per 1M tokens),"
                    " per_1000_pages, per_1000_annotated_pages or per_minute",
                )
                continue
            values = {k: _decimal(v) for k, v in entry.items()}
            out.append((model, PriceOverride(**values, source=config.doc.locate_key(path))))
        return tuple(sorted(out, key=lambda item: item[0]))

    def labelled(self, problem: Problem) -> Problem:
        """``problem`` with an expanded job's name in its field replaced by the job's
        entry and combination, so that it reads as what was written."""
        if not self.labels or not problem.field.startswith("jobs."):
            return problem
        after = problem.field[len("jobs.") :]
        head = re.split(r"[.\[]", after, maxsplit=1)[0]
        candidates = [head] if head in self.labels else []
        candidates += [n for n in self.labels if "." in n]  # a name may hold '.'
        for name in candidates:
            rest = after[len(name) :]
            if after.startswith(name) and (not rest or rest[0] in ".["):
                return Problem(problem.location, f"jobs.{self.labels[name]}{rest}", problem.message)
        return problem

    # -- the whole root ------------------------------------------------------------------

    def run(self) -> tuple[DesiredState | None, list[Problem]]:
        config_path = self.root / CONFIG_FILE
        if not self.root.is_dir():
            self.problem(Location(paths.shown(self.root)), "", "no such folder (the config root)")
            return None, self.problems
        if not config_path.is_file():
            hint = "run in the folder holding it, or name that folder with -C/--chdir ROOT"
            for alt in ("reconciler.yml", "Reconciler.yaml", "reconciler.YAML"):
                if (self.root / alt).is_file():
                    hint = f"found {alt}: rename it to {CONFIG_FILE}"
            self.problem(Location(paths.shown(config_path)), "", f"not found; {hint}")
            return None, self.problems
        escape = paths.outside_problem(self.root, config_path)
        if escape is not None:  # refused before it is read: nothing of it is shown
            self.problem(Location(paths.shown(config_path)), "", escape)
            return None, self.problems
        config = self.parse(config_path, "config")
        if config is None:
            return None, self.problems
        if not config.is_broken(("limits",)):
            self.limits = Limits(**(config.doc.value.get("limits") or {}))
        docs = [config]
        for path in self.job_files(config):
            doc = self.parse(path, "jobs")
            if doc is not None:
                docs.append(doc)
        specs = []
        for job in self.collect(docs):
            spec = self.resolve(job, config)
            if spec is not None:
                specs.append(spec)
        prices = self.prices(config)
        problems = sorted({p if p in self.final else self.labelled(p) for p in self.problems})
        if problems:
            return None, problems
        value = config.doc.value
        safety = value.get("safety") or {}
        state = DesiredState(
            root=str(self.root),
            workspace=value["workspace"],
            server=value.get("server", DEFAULT_SERVER),
            jobs=tuple(sorted(specs, key=lambda s: s.name)),
            safety=Safety(
                max_destroy=int(safety.get("max_destroy", Safety.max_destroy)),
                max_cost=_decimal(safety.get("max_cost")),
            ),
            limits=self.limits,
            config_file=paths.shown(config_path),
            files=tuple(self.files),
            prices=prices,
        )
        return state, []


def _decimal(value: Any) -> Decimal | None:
    """A YAML number (already checked by the schema) as the Decimal the user wrote: a
    float goes through its shortest repr, so 0.1 is 0.1 and not 0.1000000000000000055."""
    if value is None:
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
