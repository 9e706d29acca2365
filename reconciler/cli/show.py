"""``show PLANFILE``: print a saved plan again, in any format, without contacting the API."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.cli.context import get_globals
from reconciler.cli.plan import format_option, marker_option, render
from reconciler.plan import planfile


@click.command("show")
@click.argument(
    "planfile_path",
    metavar="PLANFILE",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
)
@format_option
@marker_option
def show_command(planfile_path: Path, fmt: str, marker: bool) -> None:
    """Print a plan saved with `plan --out`, exactly as it will be applied.

    Reads only the file: no configuration, no API key, no request. CI uses it to put the
    full text plan in the job log next to the (size-capped) markdown PR comment, and
    reviewers to look at a downloaded plan artifact.

    \b
    Examples:
      reconciler show evals.tfplan
      reconciler show evals.tfplan --format json | jq .summary
      reconciler show evals.tfplan --format markdown --marker > comment.md
    """
    saved = planfile.load(planfile_path)
    click.echo(render(saved.plan, fmt, get_globals(), marker=marker))
