"""The ``reconciler`` group, its global options, and the one place errors become exit codes."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import IO, Any

import click

from reconciler import __version__
from reconciler.cli.context import Globals
from reconciler.errors import ConfigError, ReconcilerError


class Failure(click.ClickException):
    """A ReconcilerError on its way out: ``Error: …`` on stderr, the error's exit code."""

    def __init__(self, error: ReconcilerError) -> None:
        super().__init__(error.format())
        self.error = error
        # click declares exit_code a ClassVar, but reads it from the instance.
        self.exit_code = int(error.exit_code)  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        if isinstance(self.error, ConfigError):
            # One problem per line, exactly file:LINE:COL: field: message, for editors and
            # CI annotations; the summary goes last.
            for problem in self.error.problems:
                click.echo(str(problem), err=True)
            n = len(self.error.problems)
            click.echo(
                f"Error: {n} problem{'s' if n != 1 else ''} found; the configuration is not valid.",
                err=True,
            )
            return
        click.echo(f"Error: {self.message}", err=True)


class ReconcilerGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ReconcilerError as err:
            g = ctx.find_object(Globals)
            if g is not None and g.debug:
                traceback.print_exc()
            raise Failure(err) from err


@click.group(
    cls=ReconcilerGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "-C",
    "--chdir",
    "root",
    type=click.Path(file_okay=False, path_type=Path),
    default=".",
    show_default=True,
    help="Config root: the folder holding reconciler.yaml.",
)
@click.option(
    "--server",
    envvar="MISTRAL_SERVER_URL",
    metavar="URL",
    help="API server (overrides reconciler.yaml's server:). 'local' is the embedded emulator."
    " Env: MISTRAL_SERVER_URL.",
)
@click.option("--no-color", is_flag=True, help="Never colour output (NO_COLOR does the same).")
@click.option("--debug", is_flag=True, help="Log HTTP requests (key redacted); show tracebacks.")
@click.version_option(__version__, prog_name="reconciler")
@click.pass_context
def cli(ctx: click.Context, root: Path, server: str | None, no_color: bool, debug: bool) -> None:
    """Declarative, GitOps-style management of Mistral AI batch jobs.

    Describe the batch jobs you want in YAML; `plan` shows what would change, `apply` makes
    it so. Only jobs tagged with the configuration's workspace are ever changed.

    \b
    Examples:
      reconciler -C examples validate
      reconciler -C examples plan
      reconciler -C examples apply --auto-approve --wait
      reconciler -C examples --server http://127.0.0.1:8765 status

    \b
    Exit codes: 0 ok; 1 error; 2 plan --detailed-exitcode found changes;
    3 blocked by a safety guard; 4 saved plan is stale.
    Environment: MISTRAL_API_KEY (never printed), MISTRAL_SERVER_URL, NO_COLOR.
    Shell completion: eval "$(reconciler completion bash)".
    """
    ctx.obj = Globals(root=root.absolute(), server=server or None, no_color=no_color, debug=debug)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    cli.main(args=argv, prog_name="reconciler")


from reconciler.cli.validate import schema_command, validate_command  # noqa: E402

cli.add_command(validate_command)
cli.add_command(schema_command)

from reconciler.cli.emulator import emulator_group  # noqa: E402

cli.add_command(emulator_group)

from reconciler.cli.apply import apply_command, destroy_command  # noqa: E402
from reconciler.cli.plan import plan_command  # noqa: E402
from reconciler.cli.status import outputs_command, status_command, wait_command  # noqa: E402

for _command in (
    plan_command,
    apply_command,
    destroy_command,
    status_command,
    wait_command,
    outputs_command,
):
    cli.add_command(_command)

from reconciler.cli.completion import completion_command  # noqa: E402
from reconciler.cli.show import show_command  # noqa: E402

cli.add_command(show_command)
cli.add_command(completion_command)
