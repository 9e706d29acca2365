"""``plan``: read desired and live state, print what apply would do."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO, TypeVar, cast

import click

from reconciler.cli.context import Globals, get_globals
from reconciler.cli.session import check_models, connect, load_desired
from reconciler.client import MistralClient
from reconciler.config.model import DesiredState, PriceOverride
from reconciler.connect import resolve_server
from reconciler.cost.money import parse_usd
from reconciler.errors import ExitCode, GuardError, ReconcilerError
from reconciler.estimates import moved, price_table, recheck, with_estimate
from reconciler.live import LiveState, read_live_state
from reconciler.plan import planfile
from reconciler.plan.linecount import LineDigests, TooLarge, added_removed, with_line_counts
from reconciler.plan.model import Budget, Plan
from reconciler.plan.planner import Policy, plan
from reconciler.plan.selection import Selection, resolve
from reconciler.provenance import git_commit
from reconciler.render import json as json_view
from reconciler.render import markdown as markdown_view
from reconciler.render import text as text_view

FORMATS = ("text", "json", "markdown")
F = TypeVar("F", bound=Callable[..., Any])

# Shared by plan and show.
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text (Terraform-style), json (schemas/plan.schema.json) or markdown (PR comment).",
)


# Shared by plan, apply and destroy (click builds a fresh Option each time it is applied).
allow_destroy_option = click.option(
    "--allow-destroy",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Accept a plan that cancels or deletes exactly N live jobs (beyond "
    "safety.max_destroy, or every managed job). prevent_destroy still applies.",
)


class Amount(click.ParamType):  # type: ignore[type-arg]
    """An amount of dollars (``12.40``, ``$12.40``), read by ``cost.money.parse_usd``."""

    name = "amount"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            return parse_usd(str(value))
        except ValueError as err:
            self.fail(str(err), param, ctx)


# Shared by plan and apply (destroy creates nothing, so it costs nothing).
allow_cost_option = click.option(
    "--allow-cost",
    type=Amount(),
    default=None,
    metavar="AMOUNT",
    help="Accept a plan whose estimated cost (USD) is above safety.max_cost, up to AMOUNT"
    " (e.g. 12.40). A model without a price still blocks: give it one under prices:.",
)


def selection_options(*, replace: bool = True) -> Callable[[F], F]:
    """--target / --exclude (and --replace) of plan, apply and destroy."""

    def decorate(f: F) -> F:
        if replace:
            f = click.option(
                "--replace",
                "replace",
                multiple=True,
                metavar="NAME",
                help="Plan a new version of NAME (a glob) even though its current one is fine:"
                " a forced re-run, attempt count restarted; a running one is replaced."
                " Repeatable.",
            )(f)
        f = click.option(
            "--exclude",
            "excludes",
            multiple=True,
            metavar="NAME",
            help="Leave out the jobs NAME matches (a shell-style glob). Repeatable.",
        )(f)
        return click.option(
            "--target",
            "targets",
            multiple=True,
            metavar="NAME",
            help="Plan only the jobs NAME matches (a shell-style glob, e.g. 'eval-*'; a job"
            " removed from the configuration too). Repeatable.",
        )(f)

    return decorate


class SelectionError(ReconcilerError):
    """A --target / --exclude / --replace that cannot be honoured (it matches nothing)."""


# Shared by plan and show: CI finds its pull-request comment again by this line.
marker_option = click.option(
    "--marker",
    is_flag=True,
    help="markdown only: start with a hidden '<!-- reconciler-plan: WORKSPACE -->' line, "
    "by which CI finds its PR comment and updates it in place.",
)


@dataclass(frozen=True)
class Planned:
    desired: DesiredState
    policy: Policy
    live: LiveState
    plan: Plan


def make_plan(
    desired: DesiredState,
    client: MistralClient,
    *,
    allow_destroy: int | None,
    destroy: bool = False,
    selection: Selection | None = None,
    allow_cost: Decimal | None = None,
) -> Planned:
    """Plan against fresh live state; create ids, the plan's id, the config's commit and
    the estimate of what the creates cost (checked against safety.max_cost) are filled
    in, ready to save or apply."""
    selection = selection or Selection()
    if destroy and selection.replace:
        raise SelectionError("--replace re-runs jobs; it cannot be combined with destroy")
    policy = Policy(
        max_destroy=desired.safety.max_destroy,
        allow_destroy=allow_destroy,
        protected=frozenset(j.name for j in desired.jobs if j.prevent_destroy),
        destroy_all=destroy,
        selection=selection,
    )
    live = read_live_state(client, desired.workspace)
    problems = resolve(selection, [j.name for j in desired.jobs], live.by_name()).problems
    if problems:
        raise SelectionError("; ".join(problems))
    planned = plan(desired.jobs, live.jobs, policy, workspace=desired.workspace)
    check_models(client, (c.spec for c in planned.changes if c.spec is not None))
    read = [Path(f) for f in desired.files]
    read += [Path(desired.root) / i.path for j in desired.jobs for i in j.inputs]
    planned = planned.with_create_ids(lambda: str(uuid.uuid4())).with_provenance(
        plan_id=str(uuid.uuid4()), commit=git_commit(Path(desired.root), read)
    )
    planned = count_input_lines(client, planned, live, Path(desired.root))
    planned = estimated(planned, desired, allow_cost)
    return Planned(desired, policy, live, planned)


def rechecked(p: Plan, root: Path, prices: Sequence[tuple[str, PriceOverride]]) -> Plan:
    """A saved plan, its budget checked again against a fresh estimate of its changes
    (the file is untrusted; prices move with upgrades). It keeps the estimate it was
    reviewed with; a fresh amount that differs is said on stderr."""
    checked, fresh = recheck(p, root, price_table(prices))
    note = moved(p.cost, fresh)
    if note is not None:
        click.echo(f"Note: {note}.", err=True)
    return checked


def estimated(p: Plan, desired: DesiredState, allow_cost: Decimal | None) -> Plan:
    """``p`` with the estimate of its creates and replaces, and the max_cost guard (a
    plan that creates nothing estimates nothing). Reads local inputs, never the API."""
    budget = Budget(max_cost=desired.safety.max_cost, allow_cost=allow_cost)
    return with_estimate(p, Path(desired.root), price_table(desired.prices), budget)


# Old input files read per plan to count the lines a changed input gained and lost, and
# the bytes read per file: enough for a review, bounded for a plan of thousands of jobs.
LINE_COUNT_FILES = 10
LINE_COUNT_BYTES = 64 * 1024 * 1024


def count_input_lines(client: MistralClient, p: Plan, live: LiveState, root: Path) -> Plan:
    """``inputs[N]`` diffs with the lines added and removed, when the old file (the live
    job's N-th input file) can be read: GETs only, at most LINE_COUNT_FILES of them."""
    jobs = {job.id: job for job in live.jobs}
    specs = {c.name: c.spec for c in p.changes if c.spec is not None}
    found: dict[tuple[str, str], tuple[int, int]] = {}
    items = [(c.name, c.live or c.previous, c.diffs) for c in p.changes]
    items += [(n.name, n.live, n.diffs) for n in p.notes]
    for name, ref, diffs in items:
        for diff in diffs:
            if len(found) >= LINE_COUNT_FILES:
                return with_line_counts(p, found)
            parts = diff.parts
            if len(parts) != 2 or parts[0] != "inputs" or diff.added or diff.removed:
                continue
            index = parts[1]
            job = jobs.get(ref.id) if ref is not None else None
            spec = specs.get(name)
            if not isinstance(index, int) or job is None or spec is None:
                continue
            if index >= len(job.input_files) or index >= len(spec.inputs):
                continue
            counts = _line_counts(client, job.input_files[index], root / spec.inputs[index].path)
            if counts is not None:
                found[(name, diff.path)] = counts
    return with_line_counts(p, found)


def _line_counts(client: MistralClient, file_id: str, local: Path) -> tuple[int, int] | None:
    old, new = LineDigests(LINE_COUNT_BYTES), LineDigests(LINE_COUNT_BYTES)
    try:
        client.download_file(file_id, cast("BinaryIO", old))
        with local.open("rb") as stream:
            while chunk := stream.read(1 << 16):
                new.write(chunk)
    except (ReconcilerError, TooLarge, OSError):
        return None  # the digest view stays: a plan never fails for want of line counts
    return added_removed(old.finish(), new.finish())


def selection_of(
    targets: tuple[str, ...], excludes: tuple[str, ...], replace: tuple[str, ...] = ()
) -> Selection:
    return Selection(targets=targets, excludes=excludes, replace=replace)


def render(p: Plan, fmt: str, g: Globals, *, marker: bool = False) -> str:
    """The plan in ``fmt``, without a trailing newline (click.echo adds one)."""
    match fmt:
        case "json":
            shown = json_view.render(p)
        case "markdown":
            shown = markdown_view.render(p, marker=marker)
        case _:
            shown = text_view.render(p, color=g.color_for(sys.stdout))
    return shown.rstrip("\n")


def guard_error(p: Plan) -> GuardError:
    n = len(p.violations)
    return GuardError(
        f"the plan is blocked by {n} safety guard{'s' if n != 1 else ''} (see above); "
        "nothing was changed"
    )


def plan_context(g: Globals, planned: Planned) -> planfile.PlanContext:
    server = resolve_server(planned.desired.server, g.server)
    return planfile.PlanContext(
        server=server.url,
        config_digest=planfile.config_digest(planned.desired.jobs, planned.policy),
        desired=planned.desired.jobs,
        policy=planned.policy,
        prices=planned.desired.prices,
    )


@click.command("plan")
@format_option
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when the plan has changes (0: none, 1: error, 3: blocked).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="PLANFILE",
    help="Save the plan; `apply PLANFILE` then applies exactly it, or refuses if stale.",
)
@click.option("--destroy", is_flag=True, help="Plan the removal of every managed job.")
@selection_options()
@allow_destroy_option
@allow_cost_option
@marker_option
@click.pass_context
def plan_command(
    ctx: click.Context,
    fmt: str,
    detailed_exitcode: bool,
    out: Path | None,
    destroy: bool,
    targets: tuple[str, ...],
    excludes: tuple[str, ...],
    replace: tuple[str, ...],
    allow_destroy: int | None,
    allow_cost: Decimal | None,
    marker: bool,
) -> None:
    """Show what apply would change to make live jobs match the configuration.

    Only reads: planning issues GET requests and nothing else. Every create and replace
    gets a cost estimate (from the local requests; cached in .reconciler/cache); above
    safety.max_cost the plan is blocked (exit 3) unless --allow-cost covers it.

    \b
    Examples:
      reconciler -C evals plan
      reconciler -C evals plan --format markdown > plan.md
      reconciler -C evals plan --out evals.tfplan --detailed-exitcode
      reconciler -C evals plan --out evals.tfplan --format markdown --marker > comment.md
      reconciler -C evals plan --target 'cheese-*' --exclude cheese-big --out cheese.tfplan
      reconciler -C evals plan --replace wine-quick       # re-run a job that is fine
      reconciler -C evals plan --allow-cost=80            # above safety.max_cost, up to $80
    """
    g = get_globals()
    desired = load_desired(g)
    with connect(g, desired) as client:
        planned = make_plan(
            desired,
            client,
            allow_destroy=allow_destroy,
            destroy=destroy,
            selection=selection_of(targets, excludes, replace),
            allow_cost=allow_cost,
        )
    click.echo(render(planned.plan, fmt, g, marker=marker))
    if planned.plan.blocked:
        raise guard_error(planned.plan)
    if out is not None:
        planfile.save(planned.plan, out, context=plan_context(g, planned))
        click.echo(
            f"Saved the plan to {out} (plan {planned.plan.plan_id}). Apply exactly it with: "
            f"reconciler apply {out}",
            err=True,
        )
    if detailed_exitcode and planned.plan.has_changes:
        ctx.exit(int(ExitCode.CHANGES))
