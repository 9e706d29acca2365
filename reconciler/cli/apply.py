"""``apply`` and ``destroy``: confirm, execute, report."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

from reconciler.apply.executor import Executor, Settings
from reconciler.cli.context import Globals, get_globals
from reconciler.cli.echo import shown
from reconciler.cli.plan import (
    allow_cost_option,
    allow_destroy_option,
    guard_error,
    make_plan,
    rechecked,
    render,
    selection_of,
    selection_options,
)
from reconciler.cli.session import (
    check_models,
    client_for,
    connect,
    existing,
    follower,
    load_desired,
    stdin_is_tty,
    stop_following_on_interrupt,
    terminate_as_interrupt,
)
from reconciler.client import MistralClient
from reconciler.errors import ApplyFailed, ReconcilerError, StalePlanError
from reconciler.live import read_live_state
from reconciler.plan import planfile
from reconciler.plan.model import Change, Plan
from reconciler.plan.selection import Selection
from reconciler.render.safe import terminal

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
    click.echo(
        shown(f"  Reconciler will perform the actions described above in workspace {p.workspace}.")
    )
    click.echo("  Only 'yes' will be accepted to approve.\n")
    answer = click.prompt("  Enter a value", default="", show_default=False)
    if answer.strip() != "yes":
        command = click.get_current_context().info_name or "apply"
        raise Declined(f"{command.capitalize()} cancelled: only 'yes' approves.")


def execute(
    g: Globals, client: MistralClient, p: Plan, *, root: Path, parallelism: int, what: str = "Apply"
) -> None:
    """Run the plan, printing one line per step; raise ApplyFailed when anything failed or
    an interrupt (Ctrl-C, SIGTERM) stopped it: an interrupted apply never exits 0, and
    nothing (no ``--wait``) follows it."""
    click.echo("")

    def emit(name: str, message: str) -> None:
        # Names come from the API, messages may hold a server's words or a traceback.
        click.echo(shown(f"{terminal(name)}: {message}"))

    def on_interrupt(running: tuple[Change, ...]) -> None:
        # The terminal echoes ^C without a newline: start on a fresh line.
        click.echo("", err=True)
        if running:
            n = len(running)
            head = (
                f"Interrupt received: stopping. Nothing new will start; waiting for the "
                f"{n} action{'s' if n != 1 else ''} in flight to finish:"
            )
            lines = [head, *(f"  - {terminal(c.name)} ({c.action.value})" for c in running)]
        else:
            lines = ["Interrupt received: stopping. Nothing new will start."]
        click.echo("\n".join(lines), err=True)

    executor = Executor(
        client,
        root=root,
        workspace=p.workspace,
        settings=Settings(parallelism=parallelism, debug=g.debug),
        emit=emit,
        on_interrupt=on_interrupt,
    )
    with terminate_as_interrupt():
        result = executor.execute(p)
    click.echo("")
    if result.failed or result.interrupted:
        raise ApplyFailed(result.report(what))
    click.echo(shown(result.report(what)))


def follow(g: Globals, client: MistralClient, workspace: str, names: list[str]) -> None:
    names = existing(client, workspace, names)
    if not names:
        return
    click.echo("\nWaiting for the jobs to finish...")
    with terminate_as_interrupt(), stop_following_on_interrupt(g, names):
        result = follower(g, client, workspace).follow(names)
    click.echo(shown(result.report()))
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
@selection_options()
@allow_destroy_option
@allow_cost_option
def apply_command(
    planfile_path: Path | None,
    auto_approve: bool,
    parallelism: int,
    wait: bool,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    replace: tuple[str, ...],
    allow_destroy: int | None,
    allow_cost: Decimal | None,
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
      reconciler -C evals apply --target cheese-eval       # only that job
      reconciler -C evals apply --allow-cost=80            # above safety.max_cost, up to $80
    """
    g = get_globals()
    selection = selection_of(targets, excludes, replace)
    if planfile_path is not None:
        given_flags = [
            ("--allow-destroy", allow_destroy is not None),
            ("--allow-cost", allow_cost is not None),
            *_flags(selection),
        ]
        for flag, given in given_flags:
            if given:
                raise click.UsageError(f"{flag} is saved in the plan file; plan again to change it")
        apply_saved(g, planfile_path, parallelism=parallelism, wait=wait)
        return
    desired = load_desired(g)
    with connect(g, desired) as client:
        planned = make_plan(
            desired,
            client,
            allow_destroy=allow_destroy,
            selection=selection,
            allow_cost=allow_cost,
        )
        p = planned.plan
        click.echo(render(p, "text", g))
        if p.blocked:
            raise guard_error(p)
        if p.has_changes:
            confirm(p, auto_approve=auto_approve, what="perform these actions")
            execute(g, client, p, root=g.root, parallelism=parallelism)
        if wait:
            follow(g, client, desired.workspace, _followed(p, [j.name for j in desired.jobs]))


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
        p = rechecked(saved.plan, g.root, saved.context.prices)
        check_models(client, (c.spec for c in p.changes if c.spec is not None))
        click.echo(render(p, "text", g))
        if p.blocked:
            raise guard_error(p)
        if p.has_changes:
            execute(g, client, p, root=g.root, parallelism=parallelism)
        if wait:
            follow(g, client, p.workspace, _followed(p, [s.name for s in saved.context.desired]))


def _flags(selection: Selection) -> list[tuple[str, bool]]:
    return [
        ("--target", bool(selection.targets)),
        ("--exclude", bool(selection.excludes)),
        ("--replace", bool(selection.replace)),
    ]


def _followed(p: Plan, names: list[str]) -> list[str]:
    """The configured jobs ``--wait`` follows: the targeted ones only, when targeted."""
    if p.targeting is None or not p.targeting.limited:
        return names
    selected = set(p.targeting.selected)
    return [n for n in names if n in selected]


@click.command("destroy")
@auto_approve_option
@parallelism_option
@selection_options(replace=False)
@allow_destroy_option
def destroy_command(
    auto_approve: bool,
    parallelism: int,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    allow_destroy: int | None,
) -> None:
    """Cancel and delete every job this configuration manages.

    Guarded like apply: jobs with prevent_destroy block it, and more than
    safety.max_destroy jobs need --allow-destroy=N naming exactly that count.

    \b
    Examples:
      reconciler -C evals destroy --auto-approve --allow-destroy=12
      reconciler -C evals destroy --target 'scratch-*'
    """
    g = get_globals()
    desired = load_desired(g)
    with connect(g, desired) as client:
        planned = make_plan(
            desired,
            client,
            allow_destroy=allow_destroy,
            destroy=True,
            selection=selection_of(targets, excludes),
        )
        p = planned.plan
        if not p.has_changes and not p.blocked:
            if p.targeting is not None and p.targeting.limited:
                click.echo("No managed job among the targeted ones: nothing to destroy.")
            else:
                click.echo("No managed jobs: nothing to destroy.")
            return
        click.echo(render(p, "text", g))
        if p.blocked:
            raise guard_error(p)
        confirm(p, auto_approve=auto_approve, what="destroy every managed job")
        execute(g, client, p, root=g.root, parallelism=parallelism, what="Destroy")
