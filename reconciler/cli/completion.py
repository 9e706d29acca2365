"""``completion SHELL``: print click's shell-completion script for bash, zsh or fish."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

SHELLS = ("bash", "zsh", "fish")
# click reads this variable to switch the program into completion mode.
COMPLETE_VAR = "_RECONCILER_COMPLETE"


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the shell-completion script for SHELL (commands, options, choices, files).

    The script is what `_RECONCILER_COMPLETE=SHELL_source reconciler` prints; load it from
    your shell's start-up file.

    \b
    Examples:
      eval "$(reconciler completion bash)"                 # in ~/.bashrc
      eval "$(reconciler completion zsh)"                  # in ~/.zshrc
      reconciler completion fish > ~/.config/fish/completions/reconciler.fish
    """
    cls = get_completion_class(shell)
    if cls is None:  # click knows all of SHELLS; guard against a click without one
        raise click.UsageError(f"click cannot complete for {shell}")
    root = ctx.find_root()
    assert root.command is not None and root.info_name is not None
    script = cls(root.command, {}, root.info_name, COMPLETE_VAR).source()
    click.echo(script, nl=not script.endswith("\n"))
