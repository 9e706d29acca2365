"""Global options, shared by every command through click's context object."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click


@dataclass(frozen=True)
class Globals:
    root: Path  # the config root (``-C/--chdir``), absolute
    server: str | None  # ``--server`` or MISTRAL_SERVER_URL: named outside the repository
    no_color: bool
    debug: bool
    timeout: float | None = None  # ``--timeout``/RECONCILER_TIMEOUT; None: the command's default

    def color_for(self, stream: object = None) -> bool:
        """Colour only on a TTY, never with NO_COLOR or ``--no-color``."""
        if self.no_color or os.environ.get("NO_COLOR", "") != "":
            return False
        target = stream if stream is not None else sys.stdout
        isatty = getattr(target, "isatty", None)
        return bool(isatty and isatty())


def get_globals() -> Globals:
    ctx = click.get_current_context()
    obj = ctx.find_object(Globals)
    if obj is None:  # a command invoked without the group (tests calling it directly)
        obj = Globals(root=Path.cwd(), server=None, no_color=False, debug=False)
    return obj
