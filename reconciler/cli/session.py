"""What most commands start with: the desired state, and a client for its server."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import click

from reconciler.apply.follow import Follower, current_versions
from reconciler.cli.context import Globals
from reconciler.client import MistralClient
from reconciler.config.loader import load
from reconciler.config.model import DesiredState
from reconciler.connect import make_client
from reconciler.live import read_live_state


def load_desired(g: Globals) -> DesiredState:
    """Read and validate the configuration (every command validates before anything else)."""
    return load(g.root)


def connect(g: Globals, desired: DesiredState) -> MistralClient:
    """A client for the server the configuration (or ``--server``) names."""
    return client_for(g, desired.server)


def client_for(g: Globals, config_server: str) -> MistralClient:
    """A client for ``config_server`` (as if named in the repository), or ``--server``."""

    def debug_log(line: str) -> None:
        click.echo(f"[debug] {line}", err=True)

    return make_client(
        g.root,
        config_server,
        override=g.server,
        env=os.environ,
        debug_log=debug_log if g.debug else None,
    )


def stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def existing(client: MistralClient, workspace: str, names: Iterable[str]) -> list[str]:
    """The ``names`` that have a live job, in the order given."""
    live = current_versions(read_live_state(client, workspace))
    return [name for name in names if name in live]


def follower(g: Globals, client: MistralClient, workspace: str, *, poll: float = 1.0) -> Follower:
    """Progress bars on stdout (redrawn on a terminal, coloured as the globals allow)."""
    return Follower(
        client,
        workspace,
        out=sys.stdout,
        tty=stdout_is_tty(),
        color=g.color_for(sys.stdout),
        poll=poll,
    )
