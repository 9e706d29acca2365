"""``reconciler emulator serve``: the local Mistral Batch & Files API over HTTP."""

from __future__ import annotations

import ipaddress
import math
import signal
from pathlib import Path
from types import FrameType

import click

from reconciler.api import MAX_PENDING_REQUESTS, MAX_REQUESTS_PER_JOB
from reconciler.cli.context import get_globals

DEFAULT_DB = Path(".reconciler") / "emulator.sqlite3"


@click.group("emulator")
def emulator_group() -> None:
    """The local emulator of Mistral's Batch Jobs and Files API.

    The same emulator runs in-process for `server: local`; `serve` puts it behind HTTP so
    that other processes, the official SDK or CI can use it.

    \b
    Example:
      reconciler emulator serve --port 8765 --speed 10
    """


def _finite(ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise click.BadParameter("must be a finite number")
    return value


def _fraction(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise click.BadParameter("must be a fraction between 0 and 1")
    return value


def _is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # the server loop ends on it and closes its socket


@emulator_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port to bind; 0 picks a free one.",
)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help=f"SQLite database (created if missing). Default: <root>/{DEFAULT_DB.as_posix()}, the"
    " one `server: local` uses.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=1e-6, max=1e6),
    callback=_finite,
    default=1.0,
    show_default=True,
    help="Lifecycle speed factor: a job of N requests takes about (1 + N/50)/F seconds.",
)
@click.option(
    "--hour-length",
    type=click.FloatRange(min=1e-3, max=365 * 86400.0),
    callback=_finite,
    default=3600.0,
    show_default=True,
    help="Seconds in one hour of timeout_hours (lower it to see TIMEOUT_EXCEEDED).",
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    metavar="KEY",
    help="Accept only this bearer token (repeatable). Default: any non-empty token.",
)
@click.option(
    "--latency",
    type=click.FloatRange(min=0, max=600),
    callback=_finite,
    default=0.0,
    show_default=True,
    help="Seconds added to every API request.",
)
@click.option(
    "--rate-429",
    type=float,
    default=0.0,
    show_default=True,
    callback=_fraction,
    help="Fraction of requests answered 429 with Retry-After.",
)
@click.option(
    "--rate-5xx",
    type=float,
    default=0.0,
    show_default=True,
    callback=_fraction,
    help="Fraction of requests answered 500/502/503.",
)
@click.option(
    "--drop-creates",
    type=float,
    default=0.0,
    show_default=True,
    callback=_fraction,
    help="Fraction of job creates committed, then left without a response.",
)
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0, min_open=True, max=1e6),
    callback=_finite,
    default=None,
    help="Requests per second (this process) beyond which it answers 429.",
)
@click.option(
    "--fail-requests",
    type=float,
    default=0.0,
    show_default=True,
    callback=_fraction,
    help="Fraction of batch requests that fail transiently (429/500 lines in the error file),"
    " drawn per custom_id, body and attempt: a retry can succeed.",
)
@click.option(
    "--fail-requests-permanent",
    type=float,
    default=0.0,
    show_default=True,
    callback=_fraction,
    help="Fraction of batch requests that fail permanently (400 lines, at every attempt).",
)
@click.option(
    "--max-requests-per-job",
    type=click.IntRange(1, 1_000_000_000),
    default=MAX_REQUESTS_PER_JOB,
    show_default=True,
    help="Largest job accepted at create (the API's published limit by default).",
)
@click.option(
    "--max-pending-requests",
    type=click.IntRange(1, 1_000_000_000),
    default=MAX_PENDING_REQUESTS,
    show_default=True,
    help="Requests that may be pending (in QUEUED/RUNNING jobs of all users) at once; a"
    " create beyond it is refused (the API's published limit by default).",
)
@click.option("--seed", type=int, default=None, help="Seed of the fault injection's randomness.")
def serve_command(
    *,
    host: str,
    port: int,
    db_path: Path | None,
    speed: float,
    hour_length: float,
    api_keys: tuple[str, ...],
    latency: float,
    rate_429: float,
    rate_5xx: float,
    drop_creates: float,
    rate_limit: float | None,
    fail_requests: float,
    fail_requests_permanent: float,
    max_requests_per_job: int,
    max_pending_requests: int,
    seed: int | None,
) -> None:
    """Serve the emulator over HTTP until Ctrl-C or SIGTERM.

    State (jobs, files, the request log, the clock offset) lives in the database, so a restart
    keeps it and other processes can share it. Speed, faults and API keys are set from the
    flags at every start (their defaults included); change them at run time through
    /_emulator/faults and /_emulator/settings. Binds loopback by default; any non-empty
    bearer token is accepted unless --api-key restricts it.

    \b
    Examples:
      reconciler -C examples emulator serve         # the database `server: local` uses
      MISTRAL_SERVER_URL=http://127.0.0.1:8765 reconciler -C examples plan
      reconciler emulator serve --port 0 --db /tmp/emu.sqlite3 --rate-5xx 0.1 --seed 1
      reconciler emulator serve --fail-requests 0.1 --max-requests-per-job 1000
    """
    # Imported here so that only `emulator serve` (and `server: local`) pay for Werkzeug.
    from reconciler.emulator import Emulator, Faults, serve  # noqa: PLC0415

    path = db_path if db_path is not None else get_globals().root / DEFAULT_DB
    faults = Faults(
        latency=latency,
        rate_429=rate_429,
        rate_5xx=rate_5xx,
        drop_creates=drop_creates,
        rate_limit=rate_limit,
        fail_requests=fail_requests,
        fail_requests_permanent=fail_requests_permanent,
        max_requests_per_job=max_requests_per_job,
        max_pending_requests=max_pending_requests,
    )
    emulator = Emulator(
        path, speed=speed, hour_length=hour_length, api_keys=api_keys, faults=faults, seed=seed
    )

    def ready(url: str) -> None:
        click.echo(f"Emulator listening on {url}")
        click.echo(f"State: {emulator.db_path}", err=True)
        if not _is_loopback(host):
            click.echo(
                f"Warning: {host} is not a loopback address; anyone who can reach it can use"
                " this emulator and its admin API.",
                err=True,
            )

    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        serve(emulator, host, port, on_ready=ready)
    finally:
        signal.signal(signal.SIGTERM, previous)
        emulator.close()
    click.echo("Emulator stopped.", err=True)
