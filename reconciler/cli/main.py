"""The ``reconciler`` group, its global options, and the one place errors become exit codes.

Usage errors (unknown option or command, bad value, missing argument) exit 1, not click's
2: under ``plan --detailed-exitcode`` a 2 means "the plan has changes", and CI reads it so.

The global options (``-C/--chdir``, ``--server``, ``--no-color``, ``--debug``,
``--timeout``) are accepted
before the command, as in ``reconciler -C root plan``, and after it, as in ``reconciler plan
-C root``: :func:`_adopt_global_options` gives every subcommand a copy of each, which
updates the shared :class:`Globals` only when given (the later one wins). A command's own
option of the same name wins over the global one (``wait --timeout`` bounds the following;
``reconciler --timeout 5m wait`` bounds its API work).

Whatever reaches stderr from an error or a traceback goes through :func:`echo.shown`: the
API key redacted (any part of it), every character that is not printable escaped.
"""

from __future__ import annotations

import dataclasses
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import click

from reconciler import __version__
from reconciler.cli import timeouts
from reconciler.cli.context import Globals
from reconciler.cli.echo import shown
from reconciler.errors import ConfigError, ReconcilerError

_BOLD, _RED, _RESET = "\x1b[1m", "\x1b[31m", "\x1b[0m"


class Failure(click.ClickException):
    """A ReconcilerError on its way out: ``Error: …`` on stderr, the error's exit code."""

    def __init__(self, error: ReconcilerError, *, color: bool = False) -> None:
        super().__init__(error.format())
        self.error = error
        self.color = color
        # click declares exit_code a ClassVar, but reads it from the instance.
        self.exit_code = int(error.exit_code)  # type: ignore[misc]

    def show(self, file: IO[Any] | None = None) -> None:
        if isinstance(self.error, ConfigError):
            # One problem per line, exactly file:LINE:COL: field: message, for editors and
            # CI annotations (on a terminal the place is bold and the message red); the
            # summary goes last.
            for problem in self.error.problems:
                click.echo(self._problem(problem), err=True)
            n = len(self.error.problems)
            click.echo(
                f"{self._paint('Error:', _BOLD, _RED)} {n} problem{'s' if n != 1 else ''} "
                "found; the configuration is not valid.",
                err=True,
            )
            return
        click.echo(shown(f"Error: {self.message}"), err=True)

    def _paint(self, text: str, *codes: str) -> str:
        return "".join(codes) + text + _RESET if self.color else text

    def _problem(self, problem: Any) -> str:
        # Escaped before it is painted: only our own colour codes reach the terminal.
        if not self.color:
            return shown(str(problem))
        place = self._paint(f"{shown(str(problem.location))}:", _BOLD)
        field = f" {shown(problem.field)}:" if problem.field else ""
        return f"{place}{field} {self._paint(shown(problem.message), _RED)}"


def _usage_error(err: click.UsageError) -> click.UsageError:
    """Exit 1 for a usage error: 2 is what ``plan --detailed-exitcode`` means by changes."""
    err.exit_code = 1  # type: ignore[misc]
    return err


class ReconcilerGroup(click.Group):
    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            raise _usage_error(err) from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            raise _usage_error(err) from None
        except ReconcilerError as err:
            _debug_traceback(ctx)
            g = ctx.find_object(Globals)
            color = g.color_for(sys.stderr) if g is not None else False
            raise Failure(err, color=color) from err
        except OSError as err:
            # A file that cannot be read or written (a missing folder, a full disk, no
            # permission): one line, exit 1, never a traceback.
            _debug_traceback(ctx)
            where = f"{err.filename}: " if err.filename else ""
            raise Failure(ReconcilerError(f"{where}{err.strerror or err}")) from err

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        _adopt_global_options(cmd)
        super().add_command(cmd, name)


def _debug_traceback(ctx: click.Context) -> None:
    g = ctx.find_object(Globals)
    if g is not None and g.debug:
        click.echo(shown(traceback.format_exc().rstrip("\n")), err=True)


# -- global options ------------------------------------------------------------------------

_ROOT_HELP = "Config root: the folder holding reconciler.yaml."
_SERVER_HELP = (
    "API server (overrides reconciler.yaml's server:). 'local' is the embedded emulator."
    " Env: MISTRAL_SERVER_URL."
)
_NO_COLOR_HELP = "Never colour output (NO_COLOR does the same)."
_DEBUG_HELP = "Log HTTP requests (key redacted); show tracebacks."
GLOBALS_SECTION = "Global options (also accepted before the command)"


class GlobalOption(click.Option):
    """A global option repeated on a subcommand: left out of the command's own options in
    its help, and listed under :data:`GLOBALS_SECTION` instead."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        return None

    def global_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        return super().get_help_record(ctx)


def _set_global(ctx: click.Context, **fields: Any) -> None:
    current = ctx.find_object(Globals)
    if current is None:  # the command runs without the group (tests calling it directly)
        current = Globals(root=Path.cwd(), server=None, no_color=False, debug=False)
    updated = dataclasses.replace(current, **fields)
    # Every context up to the group's holds it: the group turns errors into exit codes
    # (with --debug's traceback, --no-color's plain text) from its own context.
    here: click.Context | None = ctx
    while here is not None:
        if here.obj is None or isinstance(here.obj, Globals):
            here.obj = updated
        here = here.parent


def _on_root(ctx: click.Context, param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        _set_global(ctx, root=value.absolute())


def _on_server(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value:
        _set_global(ctx, server=value)


def _on_timeout(ctx: click.Context, param: click.Parameter, value: float | None) -> None:
    if value is not None:
        _set_global(ctx, timeout=value)


def _flag(field: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def callback(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        if value:
            _set_global(ctx, **{field: True})

    return callback


def _global_options() -> list[click.Option]:
    """Fresh copies of the group's options, for one subcommand. They default to "not
    given" (nothing overridden) and set no value of the command (expose_value=False)."""
    return [
        GlobalOption(
            ["-C", "--chdir", "root"],
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            expose_value=False,
            callback=_on_root,
            help=_ROOT_HELP,
        ),
        GlobalOption(
            ["--server"],
            metavar="URL",
            default=None,
            expose_value=False,
            callback=_on_server,
            help=_SERVER_HELP,
        ),
        GlobalOption(
            ["--no-color"],
            is_flag=True,
            expose_value=False,
            callback=_flag("no_color"),
            help=_NO_COLOR_HELP,
        ),
        GlobalOption(
            ["--debug"],
            is_flag=True,
            expose_value=False,
            callback=_flag("debug"),
            help=_DEBUG_HELP,
        ),
        GlobalOption(
            ["--timeout"],
            type=timeouts.Duration(),
            metavar="DURATION",
            default=None,
            expose_value=False,
            callback=_on_timeout,
            help=timeouts.HELP,
        ),
    ]


def _adopt_global_options(cmd: click.Command) -> None:
    """Accept the global options on ``cmd`` (and, for a group, on its subcommands) too."""
    if any(isinstance(p, GlobalOption) for p in cmd.params):
        return
    taken = {opt for p in cmd.params for opt in (*p.opts, *p.secondary_opts)}
    adopted = [o for o in _global_options() if not taken & set(o.opts)]
    cmd.params.extend(adopted)
    if isinstance(cmd, click.Group):
        for sub in cmd.commands.values():
            _adopt_global_options(sub)
    options = cmd.format_options

    def format_options(ctx: click.Context, formatter: click.HelpFormatter) -> None:
        options(ctx, formatter)  # the command's own options (and a group's commands)
        records = [
            record
            for p in cmd.params
            if isinstance(p, GlobalOption) and (record := p.global_help_record(ctx)) is not None
        ]
        if records:
            with formatter.section(GLOBALS_SECTION):
                formatter.write_dl(records)

    # An instance attribute: click calls ``self.format_options(ctx, formatter)``.
    setattr(cmd, "format_options", format_options)  # noqa: B010


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
    help=_ROOT_HELP,
)
@click.option("--server", envvar="MISTRAL_SERVER_URL", metavar="URL", help=_SERVER_HELP)
@click.option("--no-color", is_flag=True, help=_NO_COLOR_HELP)
@click.option("--debug", is_flag=True, help=_DEBUG_HELP)
@click.option(
    "--timeout",
    type=timeouts.Duration(),
    envvar=timeouts.ENV,
    default=None,
    metavar="DURATION",
    help=timeouts.HELP,
)
@click.version_option(__version__, prog_name="reconciler")
@click.pass_context
def cli(
    ctx: click.Context,
    root: Path,
    server: str | None,
    no_color: bool,
    debug: bool,
    timeout: float | None,
) -> None:
    """Declarative, GitOps-style management of Mistral AI batch jobs.

    Describe the batch jobs you want in YAML; `plan` shows what would change, `apply` makes
    it so. Only jobs tagged with the configuration's workspace are ever changed.

    \b
    Examples:
      reconciler -C examples validate
      reconciler -C examples plan
      reconciler plan -C examples --no-color      # global options may follow the command
      reconciler -C examples apply --auto-approve --wait
      reconciler -C examples --server http://127.0.0.1:8765 status

    \b
    Exit codes: 0 ok; 1 error (usage errors too: unknown option or command, bad value,
    missing argument); 2 plan --detailed-exitcode found changes; 3 blocked by a safety
    guard; 4 saved plan is stale.
    Environment: MISTRAL_API_KEY (never printed), MISTRAL_SERVER_URL, RECONCILER_TIMEOUT,
    NO_COLOR.
    Shell completion: eval "$(reconciler completion bash)".
    """
    ctx.obj = Globals(
        root=root.absolute(),
        server=server or None,
        no_color=no_color,
        debug=debug,
        timeout=timeout,
    )


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
