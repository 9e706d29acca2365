"""The global ``--timeout DURATION`` (``RECONCILER_TIMEOUT``): how long one command may
spend on the API, retries and rate-limit waits included.

A server that answers 429 with a huge ``Retry-After`` forever would otherwise hold even a
read-only ``plan`` for most of an hour. Each kind of command has its own default: reading
commands fail sooner than ``apply``/``destroy``, whose work is worth waiting for. Following
jobs (``wait``, ``apply --wait``) is not bounded by it: ``wait --timeout`` bounds that.
"""

from __future__ import annotations

from typing import Final

import click

from reconciler import durations

ENV: Final = "RECONCILER_TIMEOUT"
READ_DEFAULT: Final = 10 * 60.0  # plan, status, outputs, wait (before it follows)
WRITE_DEFAULT: Final = 60 * 60.0  # apply, destroy
WRITING_COMMANDS: Final = frozenset({"apply", "destroy"})


class Duration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(
        self, value: object, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value)
            if seconds > 0:
                return seconds
        try:
            return durations.parse(str(value))
        except durations.DurationError as err:
            self.fail(str(err), param, ctx)


def for_command(command: str | None, given: float | None) -> tuple[float, str]:
    """The limit for ``command`` and how to name it in a message."""
    if given is not None:
        return given, f"--timeout {durations.show(given)}"
    default = WRITE_DEFAULT if command in WRITING_COMMANDS else READ_DEFAULT
    return default, f"{durations.show(default)}, the default for {command or 'this command'}"


HELP: Final = (
    "Give up on the API after this long (retries and rate-limit waits included), e.g. 90s, "
    f"10m, 1h. Default: {durations.show(READ_DEFAULT)} for plan, status and outputs, "
    f"{durations.show(WRITE_DEFAULT)} for apply and destroy; following jobs is bounded by "
    f"wait --timeout instead. Env: {ENV}."
)
