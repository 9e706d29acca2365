"""What most commands start with: the desired state, and a client for its server."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

import click

from reconciler import models
from reconciler.apply.follow import Follower, current_versions
from reconciler.cli import timeouts
from reconciler.cli.context import Globals
from reconciler.client import MistralClient
from reconciler.config.loader import load
from reconciler.config.model import DesiredState, JobSpec
from reconciler.connect import LOCAL_BASE_URL, make_client
from reconciler.errors import ApiError, ConfigError, ReconcilerError
from reconciler.live import read_live_state


def load_desired(g: Globals) -> DesiredState:
    """Read and validate the configuration (every command validates before anything else)."""
    return load(g.root)


def connect(g: Globals, desired: DesiredState) -> MistralClient:
    """A client for the server the configuration (or ``--server``) names."""
    return client_for(g, desired.server)


def client_for(g: Globals, config_server: str) -> MistralClient:
    """A client for ``config_server`` (as if named in the repository), or ``--server``,
    bounded by the command's ``--timeout`` (or its default) from now on."""

    def debug_log(line: str) -> None:
        # The client redacted and escaped each line; every line gets the prefix.
        click.echo("\n".join(f"[debug] {part}" for part in line.split("\n")), err=True)

    client = make_client(
        g.root,
        config_server,
        override=g.server,
        env=os.environ,
        debug_log=debug_log if g.debug else None,
    )
    ctx = click.get_current_context(silent=True)
    seconds, label = timeouts.for_command(ctx.info_name if ctx else None, g.timeout)
    client.set_deadline(seconds, label=label)
    return client


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def existing(client: MistralClient, workspace: str, names: Iterable[str]) -> list[str]:
    """The ``names`` that have a live job, in the order given."""
    live = current_versions(read_live_state(client, workspace))
    return [name for name in names if name in live]


def follower(g: Globals, client: MistralClient, workspace: str, *, poll: float = 1.0) -> Follower:
    """Progress bars on stdout (redrawn on a terminal, coloured as the globals allow).

    Following is bounded by its own options (``wait --timeout``), not by the command's
    ``--timeout``: the client's deadline is lifted here."""
    client.set_deadline(None)
    return Follower(
        client,
        workspace,
        out=sys.stdout,
        tty=stdout_is_tty(),
        color=g.color_for(sys.stdout),
        poll=poll,
    )


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


class StoppedFollowing(ReconcilerError):
    """Ctrl-C (or SIGTERM) while following jobs: they keep running on the server."""


def resume_command(g: Globals, names: Sequence[str]) -> str:
    """The command that follows ``names`` again, as the user can paste it."""
    words = ["reconciler", "-C", _shown_root(g.root)]
    if g.server is not None and g.server != os.environ.get("MISTRAL_SERVER_URL"):
        words += ["--server", _without_credentials(g.server)]
    words += ["wait", *names]
    return " ".join(shlex.quote(w) for w in words)


@contextlib.contextmanager
def stop_following_on_interrupt(g: Globals, names: Sequence[str]) -> Iterator[None]:
    """Turn Ctrl-C while following into a clear message (not click's bare ``Aborted!``):
    following stops, the jobs do not, and this is how to pick them up again."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo("", err=True)  # after the terminal's ^C
        n = len(names)
        raise StoppedFollowing(
            f"interrupted: stopped following {n} job{'s' if n != 1 else ''}. They keep "
            f"running on the server; to follow them again, run:\n  {resume_command(g, names)}"
        ) from None


def _shown_root(root: Path) -> str:
    try:
        relative = root.relative_to(Path.cwd())
    except ValueError:
        return str(root)
    return str(relative) if relative.parts else "."


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def check_models(client: MistralClient, specs: Iterable[JobSpec]) -> None:
    """Refuse (a ConfigError, exit 1) a model the server does not list, before anything
    is created; one ``GET /v1/models``, and none when no spec names a model to check."""
    to_check = [s for s in specs if models.needs_checking(s)]
    if not to_check:
        return
    try:
        cards = client.list_models()
    except ApiError as err:
        if err.status != 404:
            raise
        click.echo(
            f"Warning: {_server_name(client)} does not serve GET /v1/models (HTTP 404); "
            "model names were not checked.",
            err=True,
        )
        return
    problems = models.unknown_models(
        to_check, models.known_names(cards), server=_server_name(client)
    )
    if problems:
        raise ConfigError(problems)


def _server_name(client: MistralClient) -> str:
    if client.base_url.rstrip("/") == LOCAL_BASE_URL:
        return "the local emulator"
    return client.host
