"""The ``reconciler`` group, its global options, and the one place errors become exit codes."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import click

from reconciler import __version__
from reconciler.cli.context import Globals
from reconciler.errors import ExitCode, ReconcilerError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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
    it so.
    """
    ctx.obj = Globals(root=root.absolute(), server=server or None, no_color=no_color, debug=debug)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the group, map errors to exit codes once."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        code = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
    except ReconcilerError as err:
        if debug:
            traceback.print_exc()
        click.echo(f"Error: {err.format()}", err=True)
        sys.exit(int(err.exit_code))
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(int(ExitCode.ERROR))
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else int(ExitCode.OK))


from reconciler.cli.validate import schema_command, validate_command  # noqa: E402

cli.add_command(validate_command)
cli.add_command(schema_command)

from reconciler.cli.emulator import emulator_group  # noqa: E402

cli.add_command(emulator_group)
