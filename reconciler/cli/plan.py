"""``plan``: read desired and live state, print what apply would do."""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler.cli.context import Globals, get_globals
from reconciler.cli.session import connect, load_desired
from reconciler.client import MistralClient
from reconciler.config.model import DesiredState
from reconciler.connect import resolve_server
from reconciler.errors import ExitCode, GuardError
from reconciler.live import LiveState, read_live_state
from reconciler.plan import planfile
from reconciler.plan.model import Plan
from reconciler.plan.planner import Policy, plan
from reconciler.render import json as json_view
from reconciler.render import markdown as markdown_view
from reconciler.render import text as text_view

FORMATS = ("text", "json", "markdown")

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
) -> Planned:
    """Plan against fresh live state; create ids are filled in, ready to save or apply."""
    policy = Policy(
        max_destroy=desired.safety.max_destroy,
        allow_destroy=allow_destroy,
        protected=frozenset(j.name for j in desired.jobs if j.prevent_destroy),
        destroy_all=destroy,
    )
    live = read_live_state(client, desired.workspace)
    planned = plan(desired.jobs, live.jobs, policy, workspace=desired.workspace)
    return Planned(desired, policy, live, planned.with_create_ids(lambda: str(uuid.uuid4())))


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
@allow_destroy_option
@marker_option
@click.pass_context
def plan_command(
    ctx: click.Context,
    fmt: str,
    detailed_exitcode: bool,
    out: Path | None,
    destroy: bool,
    allow_destroy: int | None,
    marker: bool,
) -> None:
    """Show what apply would change to make live jobs match the configuration.

    Only reads: planning issues GET requests and nothing else.

    \b
    Examples:
      reconciler -C evals plan
      reconciler -C evals plan --format markdown > plan.md
      reconciler -C evals plan --out evals.tfplan --detailed-exitcode
      reconciler -C evals plan --out evals.tfplan --format markdown --marker > comment.md
    """
    g = get_globals()
    desired = load_desired(g)
    with connect(g, desired) as client:
        planned = make_plan(desired, client, allow_destroy=allow_destroy, destroy=destroy)
    click.echo(render(planned.plan, fmt, g, marker=marker))
    if planned.plan.blocked:
        raise guard_error(planned.plan)
    if out is not None:
        planfile.save(planned.plan, out, context=plan_context(g, planned))
        click.echo(
            f"Saved the plan to {out}. Apply exactly it with: reconciler apply {out}", err=True
        )
    if detailed_exitcode and planned.plan.has_changes:
        ctx.exit(int(ExitCode.CHANGES))
