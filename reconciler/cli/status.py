"""``status``, ``wait`` and ``outputs``: look at the managed jobs, follow them, get results."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import BinaryIO, cast

import click

from reconciler import fileio
from reconciler.apply.follow import current_versions
from reconciler.cli.context import get_globals
from reconciler.cli.session import (
    connect,
    existing,
    follower,
    load_desired,
    stdout_is_tty,
    stop_following_on_interrupt,
    terminate_as_interrupt,
)
from reconciler.client import MistralClient
from reconciler.config.model import DesiredState, JobSpec
from reconciler.cost.actuals import actual_cost
from reconciler.cost.pricing import cost_of
from reconciler.errors import ExitCode, ReconcilerError
from reconciler.estimates import (
    EstimateCache,
    estimate_spec,
    price_table,
    spec_request_lines,
    usage_of_file,
)
from reconciler.live import LiveJob, LiveState, read_live_state
from reconciler.outputs import merged_results
from reconciler.render import status as status_view
from reconciler.render.safe import terminal

WAIT_GRACE = 10.0  # seconds the API may take beyond ``wait --timeout`` before giving up


@click.command("status")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format; json is versioned (format_version) and stable for tools.",
)
@click.option(
    "-w",
    "--wide",
    is_flag=True,
    help="text: also show where each job came from: the git commit of its configuration"
    " and the plan that created it (json always has both).",
)
@click.option(
    "--cost",
    "show_cost",
    is_flag=True,
    help="Also show each job's cost estimate and, for finished jobs, the tokens and cost"
    " their results report (downloads each finished job's output file once; cached).",
)
def status_command(fmt: str, wide: bool, show_cost: bool) -> None:
    """Show the managed jobs: name, version, status, progress, age, sync and health.

    One row per job name: its current version (the newest live job), how many older
    versions are kept, whether it matches the configuration (SYNC: in sync, spec changed,
    retry pending, not in config, not created) and how it is doing (HEALTH: healthy,
    progressing, missing, or degraded with the reason: cancelled outside the reconciler,
    requests that failed, out of attempts).

    \b
    Examples:
      reconciler -C evals status
      reconciler -C evals status --wide                     # + COMMIT and PLAN
      reconciler -C evals status --cost                     # + ESTIMATE and ACTUAL
      reconciler -C evals status --format json | jq '.jobs[] | {name, health}'
    """
    g = get_globals()
    desired = load_desired(g)
    with connect(g, desired) as client:
        state = read_live_state(client, desired.workspace)
        costs = RowCosts(client, desired).of_state(state) if show_cost else {}
    groups = state.by_name()
    specs = desired.by_name()
    rows = []
    for name in sorted(groups.keys() | specs.keys()):
        versions = groups.get(name, [])
        current = versions[-1] if versions else None
        spec = specs.get(name)
        attempts = spec.max_attempts if spec is not None else None
        rows.append(
            status_view.Row(
                name=name,
                current=current,
                versions=len(versions),
                sync=status_view.sync_state(current, spec.digest if spec else None, attempts),
                health=status_view.health(current, attempts),
                cost=costs.get(name),
            )
        )
    now = time.time()
    if fmt == "json":
        click.echo(status_view.render_json(rows, workspace=desired.workspace, now=now))
    else:
        color = g.color_for(sys.stdout)
        click.echo(status_view.render_text(rows, now=now, color=color, wide=wide, cost=show_cost))


class RowCosts:
    """``status --cost``: a job's estimate (when its current version runs the configured
    spec: the same estimate, and cache, as the plan's) and what its results say it used
    (a finished job's output file, downloaded once and cached by file id)."""

    def __init__(self, client: MistralClient, desired: DesiredState) -> None:
        self.client = client
        self.desired = desired
        self.root = Path(desired.root)
        self.table = price_table(desired.prices)
        self.cache = EstimateCache(self.root)

    def of_state(self, state: LiveState) -> dict[str, status_view.RowCost]:
        """Each job name's costs (configured or live), by name."""
        groups = state.by_name()
        specs = self.desired.by_name()
        return {
            name: self.of(groups[name][-1] if groups.get(name) else None, specs.get(name))
            for name in sorted(groups.keys() | specs.keys())
        }

    def of(self, job: LiveJob | None, spec: JobSpec | None) -> status_view.RowCost:
        """One job's costs; a file that cannot be read (an input gone, an output file the
        API will not give) is said in its cell, never fails the whole status."""
        estimate = estimated = unread = usage = actual = None
        estimate_error = actual_error = None
        if spec is not None and (job is None or job.spec_digest == spec.digest):
            try:
                source = spec_request_lines(spec, self.root)
                if source.unread is not None:
                    unread = source.unread
                else:
                    estimate, _ = estimate_spec(spec, source, self.table, self.cache)
                    estimated = cost_of(estimate, spec.model, self.table)
            except ReconcilerError as err:
                estimate_error = str(err)
        if job is not None and job.status.is_terminal and job.output_file:
            file_id = job.output_file
            try:
                usage = usage_of_file(
                    self.root,
                    file_id,
                    lambda out: self.client.download_file(file_id, cast("BinaryIO", out)),
                )
                actual = actual_cost(usage, job.model, self.table, job.endpoint)
            except ReconcilerError as err:
                actual_error = str(err)
        return status_view.RowCost(
            estimate, estimated, unread, usage, actual, estimate_error, actual_error
        )


@click.command("wait")
@click.argument("names", nargs=-1)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Give up after this long (exit 1). Default: wait as long as it takes.",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="How often to read live state.",
)
@click.pass_context
def wait_command(
    ctx: click.Context, names: tuple[str, ...], timeout: float | None, poll: float
) -> None:
    """Follow jobs until they reach a terminal state, with a progress bar per job.

    NAMES default to every job in the configuration that exists. Exits 0 when every
    followed job succeeded, 1 when any failed, timed out or was cancelled.

    \b
    Example:
      reconciler -C evals wait cheese-eval wine-quick --timeout 3600
    """
    g = get_globals()
    desired = load_desired(g)
    with connect(g, desired) as client:
        if names:
            follow = list(dict.fromkeys(names))
        else:
            follow = existing(client, desired.workspace, (j.name for j in desired.jobs))
            if not follow:
                click.echo("No jobs to wait for: none of the configured jobs exists yet.")
                return
        with terminate_as_interrupt(), stop_following_on_interrupt(g, follow):
            following = follower(g, client, desired.workspace, poll=poll)
            if timeout is not None:
                # No wait on the API may outlast wait's own limit by much either; the
                # grace lets the follower itself report "Timed out" when it is reached.
                client.set_deadline(timeout + WAIT_GRACE, label=f"wait --timeout {timeout:g}")
            result = following.follow(follow, timeout=timeout)
    click.echo(result.report())
    if result.timed_out or result.unsuccessful:
        ctx.exit(int(ExitCode.ERROR))


@click.command("outputs")
@click.argument("name")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write to this file instead of standard output.",
)
def outputs_command(name: str, output: Path | None) -> None:
    """Download the current version's results and errors as JSONL, ordered by custom_id.

    Result lines and error lines are merged into one stream (each custom_id appears once,
    in one or the other); numeric custom ids sort numerically. On a terminal, control
    characters in the lines are shown escaped; piped or written with -o, the bytes are
    exactly the API's. -o writes the whole file or nothing (a temporary file beside it,
    renamed when complete).

    \b
    Example:
      reconciler -C evals outputs cheese-eval -o cheese-results.jsonl
    """
    g = get_globals()
    desired = load_desired(g)
    with connect(g, desired) as client:
        job = current_versions(read_live_state(client, desired.workspace)).get(name)
        if job is None:
            raise ReconcilerError(
                f"no live job named {terminal(name)} in workspace {desired.workspace}"
            )
        if output is None:
            results, errors = merged_results(
                client, job, sys.stdout.buffer, for_terminal=stdout_is_tty()
            )
            sys.stdout.flush()
        else:
            # Written aside and renamed: a failed download never leaves a partial file.
            results, errors = fileio.write_atomically(
                output, lambda fh: merged_results(client, job, fh), what="results file"
            )
    click.echo(
        terminal(f"{name}: {_count(results, 'result')}, {_count(errors, 'error')} [id={job.id}]"),
        err=True,
    )


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"
