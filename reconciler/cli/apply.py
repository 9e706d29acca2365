"""``apply`` and ``destroy``: confirm, execute, report."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from reconciler.apply.executor import Executor, Settings
from reconciler.cli.context import Globals, get_globals
from reconciler.cli.plan import allow_destroy_option, guard_error, make_plan, render
from reconciler.cli.session import (
    client_for,
    connect,
    existing,
    follower,
    load_desired,
    stdin_is_tty,
)
from reconciler.client import MistralClient
from reconciler.errors import ApplyFailed, ReconcilerError, StalePlanError
from reconciler.live import read_live_state
from reconciler.plan import planfile
from reconciler.plan.model import Plan

parallelism_option = click.option(
    "--parallelism",
    type=click.IntRange(1, 64),
    default=8,
    show_default=True,
    metavar="N",
    help="Run up to N independent actions at once.",
)
auto_approve_option = click.option(
    "--auto-approve",
    is_flag=True,
    help="Skip the confirmation prompt (needed without a terminal, e.g. in CI).",
)


class Declined(ReconcilerError):
    pass


def confirm(p: Plan, *, auto_approve: bool, what: str) -> None:
    """Terraform's prompt: only ``yes`` proceeds; without a TTY, only --auto-approve does."""
    if auto_approve:
        return
    if not stdin_is_tty():
        raise Declined(
            f"refusing to {what} without confirmation: no terminal to ask on. Pass "
            "--auto-approve, or apply a reviewed plan file (plan --out, then apply PLANFILE)."
        )
    click.echo(f"\nDo you want to {what}?")
    click.echo(f"  Reconciler will perform the actions described above in workspace {p.workspace}.")
    click.echo("  Only 'yes' will be accepted to approve.\n")
    answer = click.prompt("  Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        command = click.get_current_context().info_name or "apply"
        raise Declined(f"{command.capitalize()} cancelled: only 'yes' approves.")


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled, ``kill``) stops an apply like Ctrl-C does: nothing new
    starts, what is in flight finishes and is reported. A second signal is not caught."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, previous)
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (tests' CliRunner)
        return
    previous = signal.signal(signal.SIGTERM, interrupt) or signal.SIG_DFL
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def execute(g: Globals, client: MistralClient, p: Plan, *, root: Path, parallelism: int) -> None:
    """Run the plan, printing one line per step; raise ApplyFailed when anything failed."""
    click.echo("")

    def emit(name: str, message: str) -> None:
        click.echo(f"{name}: {message}")

    executor = Executor(
        client,
        root=root,
        workspace=p.workspace,
        settings=Settings(parallelism=parallelism, debug=g.debug),
        emit=emit,
    )
    with terminate_as_interrupt():
        result = executor.execute(p)
    click.echo("")
    if result.failed:
        raise ApplyFailed(result.report())
    click.echo(result.report())


def follow(g: Globals, client: MistralClient, workspace: str, names: list[str]) -> None:
    names = existing(client, workspace, names)
    if not names:
        return
    click.echo("\nWaiting for the jobs to finish...")
    result = follower(g, client, workspace).follow(names)
    click.echo(result.report())
    if result.unsuccessful:
        raise ApplyFailed("some jobs did not succeed (see above)")


@click.command("apply")
@click.argument(
    "planfile_path",
    metavar="[PLANFILE]",
    required=False,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
)
@auto_approve_option
@parallelism_option
@click.option("--wait", is_flag=True, help="Then follow the jobs until they finish.")
@allow_destroy_option
def apply_command(
    planfile_path: Path | None,
    auto_approve: bool,
    parallelism: int,
    wait: bool,
    allow_destroy: int | None,
) -> None:
    """Create, cancel and delete jobs until live state matches the configuration.

    Without PLANFILE: plan, show the plan, ask for confirmation (only 'yes' proceeds;
    without a terminal, --auto-approve is required), then apply. With PLANFILE (from
    `plan --out`): apply exactly that reviewed plan without asking, or refuse with exit 4
    when live state moved since it was made.

    \b
    Examples:
      reconciler -C evals apply
      reconciler -C evals apply --auto-approve --wait      # CI
      reconciler -C evals apply evals.tfplan               # a reviewed, saved plan
    """
    g = get_globals()
    if planfile_path is not None:
        if allow_destroy is not None:
            raise click.UsageError(
                "--allow-destroy is saved in the plan file; plan again to change it"
            )
        apply_saved(g, planfile_path, parallelism=parallelism, wait=wait)
        return
    desired = load_desired(g)
    with connect(g, desired) as client:
        planned = make_plan(desired, client, allow_destroy=allow_destroy)
        p = planned.plan
        click.echo(render(p, "text", g))
        if p.blocked:
            raise guard_error(p)
        if p.has_changes:
            confirm(p, auto_approve=auto_approve, what="perform these actions")
            execute(g, client, p, root=g.root, parallelism=parallelism)
        if wait:
            follow(g, client, desired.workspace, [j.name for j in desired.jobs])


def apply_saved(g: Globals, path: Path, *, parallelism: int, wait: bool) -> None:
    saved = planfile.load(path)
    # The server is the one the plan was made against, unless named outside the repository.
    with client_for(g, saved.context.server) as client:
        if g.server is not None and g.server.rstrip("/") != saved.context.server:
            raise StalePlanError(
                f"the plan was made against {saved.context.server}, not {g.server}"
            )
        live = read_live_state(client, saved.plan.workspace)
        planfile.ensure_fresh(saved, live.jobs)
        p = saved.plan
        click.echo(render(p, "text", g))
        if p.blocked:
            raise guard_error(p)
        if p.has_changes:
            execute(g, client, p, root=g.root, parallelism=parallelism)
        if wait:
            follow(g, client, p.workspace, [s.name for s in saved.context.desired])


@click.command("destroy")
@auto_approve_option
@parallelism_option
@allow_destroy_option
def destroy_command(auto_approve: bool, parallelism: int, allow_destroy: int | None) -> None:
    """Cancel and delete every job this configuration manages.

    Guarded like apply: jobs with prevent_destroy block it, and more than
    safety.max_destroy jobs need --allow-destroy=N naming exactly that count.

    \b
    Example:
      reconciler -C evals destroy --auto-approve --allow-destroy=12
    """
    g = get_globals()
    desired = load_desired(g)
    with connect(g, desired) as client:
        planned = make_plan(desired, client, allow_destroy=allow_destroy, destroy=True)
        p = planned.plan
        if not p.has_changes and not p.blocked:
            click.echo("No managed jobs: nothing to destroy.")
            return
        click.echo(render(p, "text", g))
        if p.blocked:
            raise guard_error(p)
        confirm(p, auto_approve=auto_approve, what="destroy every managed job")
        execute(g, client, p, root=g.root, parallelism=parallelism)
