"""``reconciler validate`` and ``reconciler schema``: offline checks, never a request.

``validate`` raises the loader's ConfigError; the CLI edge prints every problem on stderr,
one per line, exactly ``path/to/file.yaml:LINE:COL: field.path: message`` (what editors
and CI annotations parse), then ``Error: N problems found; ...`` and exits 1.
"""

from __future__ import annotations

import click

from reconciler.cli.context import get_globals
from reconciler.config.loader import load
from reconciler.config.schema import SCHEMA_FILES, schema_text
from reconciler.errors import ReconcilerError


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@click.command("validate")
def validate_command() -> None:
    """Check the configuration and every input file; report all problems at once.

    Reads reconciler.yaml, the job files and the local JSONL inputs, and checks them
    against the JSON Schemas and the rules of the API. Never contacts the API and needs no
    key, so it suits pre-commit hooks and the first step of CI. Problems are printed one
    per line as file:LINE:COL: field: message; the exit code is 1 when there is any.

    \b
    Examples:
      reconciler -C examples validate
      reconciler validate            # in the folder holding reconciler.yaml
    """
    state = load(get_globals().root)
    click.echo(
        f"Configuration is valid: {_plural(len(state.jobs), 'job')} in"
        f" {_plural(len(state.files), 'file')} (workspace {state.workspace})."
    )


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
