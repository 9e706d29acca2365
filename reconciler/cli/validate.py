"""``reconciler validate`` and ``reconciler schema``: offline checks, never a request.

``validate`` raises the loader's ConfigError; the CLI edge prints every problem on stderr,
one per line, exactly ``path/to/file.yaml:LINE:COL: field.path: message`` (what editors
and CI annotations parse), then ``Error: N problems found; ...`` and exits 1.
"""

from __future__ import annotations

import difflib
import itertools
import json
from pathlib import Path

import click

from reconciler.cli.context import get_globals
from reconciler.config.loader import load
from reconciler.config.model import DesiredState, JobSpec, canonical_json
from reconciler.config.prompts import iter_request_lines
from reconciler.config.schema import SCHEMA_FILES, schema_text
from reconciler.errors import ReconcilerError

EXPLAIN_REQUESTS = 3


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@click.command("validate")
@click.option(
    "--explain",
    "explain",
    metavar="NAME",
    help="Also print job NAME as resolved (defaults merged, matrix filled in) with its"
    " first generated requests.",
)
def validate_command(explain: str | None) -> None:
    """Check the configuration and every input file; report all problems at once.

    Reads reconciler.yaml, the job files and the local JSONL inputs, and checks them
    against the JSON Schemas and the rules of the API. Never contacts the API and needs no
    key, so it suits pre-commit hooks and the first step of CI. Problems are printed one
    per line as file:LINE:COL: field: message; the exit code is 1 when there is any.

    An entry with a matrix: counts as the jobs it expands to; --explain NAME shows one of
    them (or any job) as the planner sees it, with the first requests a prompts: job
    generates.

    \b
    Examples:
      reconciler -C examples validate
      reconciler validate            # in the folder holding reconciler.yaml
      reconciler -C examples validate --explain qa-mistral-small-latest-cheese
    """
    state = load(get_globals().root)
    expanded = sum(1 for j in state.jobs if j.origin)
    from_matrices = f" ({expanded} from matrices)" if expanded else ""
    click.echo(
        f"Configuration is valid: {_plural(len(state.jobs), 'job')}{from_matrices} in"
        f" {_plural(len(state.files), 'file')} (workspace {state.workspace})."
    )
    if explain is not None:
        click.echo(_explain(state, explain))


def _explain(state: DesiredState, name: str) -> str:
    """Job ``name`` as resolved, in JSON, and the first requests it runs."""
    spec = state.by_name().get(name)
    if spec is None:
        close = difflib.get_close_matches(name, [j.name for j in state.jobs], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ReconcilerError(f"no job named {name!r} in this configuration{hint}")
    lines = [
        "",
        f"Job {spec.name}, defined at {spec.source}"
        + (f" by jobs.{spec.origin}" if spec.origin else "")
        + ":",
        json.dumps(_resolved(spec), indent=2, ensure_ascii=False),
    ]
    requests = _first_requests(state, spec)
    if requests:
        total = spec.request_count
        of = f" of {total:,}" if total is not None else ""
        lines += ["", f"First {_plural(len(requests), 'request')}{of}:", *requests]
    return "\n".join(lines)


def _resolved(spec: JobSpec) -> dict[str, object]:
    out: dict[str, object] = {"endpoint": spec.endpoint}
    if spec.model is not None:
        out["model"] = spec.model
    if spec.agent_id is not None:
        out["agent_id"] = spec.agent_id
    if spec.inputs:
        out["inputs"] = [i.short for i in spec.inputs]
    if spec.input_files:
        out["input_files"] = list(spec.input_files)
    if spec.requests_json is not None:
        out["requests"] = f"{_plural(spec.request_count or 0, 'inline request')}"
    if spec.prompts is not None:
        p = spec.prompts
        out["prompts"] = {
            "rows": f"{p.rows.short} ({p.format}, {_plural(p.rows.lines, 'row')})",
            "custom_id": p.custom_id,
            "body": p.body,
        }
    out |= {
        "metadata": spec.metadata_dict,
        "timeout_hours": spec.timeout_hours,
        "max_attempts": spec.max_attempts,
        "on_change": str(spec.on_change),
        "prevent_destroy": spec.prevent_destroy,
        "history_limit": spec.history_limit,
        "digest": spec.digest,
    }
    return out


def _first_requests(state: DesiredState, spec: JobSpec) -> list[str]:
    if spec.prompts is not None:
        lines = iter_request_lines(Path(state.root), spec.prompts)
        try:
            return [
                line.decode().rstrip("\n") for line in itertools.islice(lines, EXPLAIN_REQUESTS)
            ]
        finally:
            lines.close()
    if spec.requests_json is not None:
        requests = spec.requests or []
        return [canonical_json(r) for r in requests[:EXPLAIN_REQUESTS]]
    if spec.inputs:
        out: list[str] = []
        for item in spec.inputs:
            with (Path(state.root) / item.path).open("rb") as fh:
                for raw in fh:
                    if raw.strip():
                        out.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                    if len(out) == EXPLAIN_REQUESTS:
                        return out
        return out
    return []


@click.command("schema")
@click.argument("kind", type=click.Choice(sorted(SCHEMA_FILES)), default="config")
def schema_command(kind: str) -> None:
    """Print a JSON Schema: config (reconciler.yaml), jobs (job files) or plan (plan --format json).

    Editors (VS Code's YAML extension, anything using yaml-language-server) complete and
    check reconciler.yaml and job files through a first-line comment such as
    '# yaml-language-server: $schema=../schemas/config.schema.json' (a path relative to
    the YAML file, or a URL).

    \b
    Examples:
      reconciler schema config > schemas/config.schema.json
      reconciler schema jobs > schemas/jobs.schema.json
      reconciler schema plan | jq '.properties | keys'
    """
    text = schema_text(kind)
    if text is None:
        raise ReconcilerError(f"the {kind} schema is not available in this installation")
    click.echo(text, nl=not text.endswith("\n"))
