"""``reconciler validate`` and ``reconciler schema``: offline checks, never a request.

``validate`` prints every problem on stderr, one per line, exactly
``path/to/file.yaml:LINE:COL: field.path: message`` (what editors and CI annotations
parse), then fails with a one-line summary.
"""

from __future__ import annotations

import click

from reconciler.cli.context import get_globals
from reconciler.config.loader import load
from reconciler.config.schema import SCHEMA_FILES, schema_text
from reconciler.errors import ConfigError, ReconcilerError


class ProblemsReported(ConfigError):
    """A ConfigError whose problems are already printed: the CLI edge adds the summary."""

    def format(self) -> str:
        n = len(self.problems)
        return f"{n} problem{'s' if n != 1 else ''} found; the configuration is not valid."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@click.command("validate")
def validate_command() -> None:
    """Check the configuration and every input file; report all problems at once.

    Reads reconciler.yaml, the job files and the local JSONL inputs, and checks them
    against the JSON Schemas and the rules of the API. Never contacts the API.
    """
    root = get_globals().root
    try:
        state = load(root)
    except ConfigError as err:
        for problem in err.problems:
            click.echo(str(problem), err=True)
        raise ProblemsReported(err.problems) from err
    click.echo(
        f"Configuration is valid: {_plural(len(state.jobs), 'job')} in"
        f" {_plural(len(state.files), 'file')} (workspace {state.workspace})."
    )


@click.command("schema")
@click.argument("kind", type=click.Choice(sorted(SCHEMA_FILES)), default="config")
def schema_command(kind: str) -> None:
    """Print a JSON Schema: config (reconciler.yaml), jobs (job files) or plan (plan --format json).

    Editors use them through a first-line comment such as
    '# yaml-language-server: $schema=schemas/config.schema.json'.
    """
    text = schema_text(kind)
    if text is None:
        raise ReconcilerError(f"the {kind} schema is not available in this installation")
    click.echo(text, nl=not text.endswith("\n"))
