"""The one error tree of the reconciler.

    ReconcilerError            exit 1 unless a subclass says otherwise
     ├── ConfigError           bad configuration: carries every Problem found (file:line:col)
     ├── ApiError              the API answered an error, or could not be reached
     │    └── UnknownOutcome   a write whose effect is unknown (timeout, dropped connection, 5xx)
     ├── GuardError            a safety guard blocked the plan           (exit 3)
     ├── StalePlanError        a saved plan no longer matches live state  (exit 4)
     └── ApplyFailed           some actions of an apply failed            (exit 1)

Errors are turned into a message and an exit code exactly once, in the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    CHANGES = 2  # plan --detailed-exitcode found changes
    BLOCKED = 3  # a safety guard blocked the plan
    STALE = 4  # a saved plan is stale


class ReconcilerError(Exception):
    exit_code: ExitCode = ExitCode.ERROR

    def format(self) -> str:
        """The message shown to the user after ``Error: ``."""
        return str(self)


@dataclass(frozen=True, order=True)
class Location:
    """A place in a file: ``file`` is shown as given (relative to the working folder)."""

    file: str
    line: int = 0  # 1-based; 0 when unknown (the whole file)
    column: int = 0  # 1-based; 0 when unknown

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        if self.column <= 0:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True, order=True)
class Problem:
    """One configuration problem: ``path/to/file.yaml:LINE:COL: field.path: message``."""

    location: Location
    field: str  # dotted path of the offending field, e.g. "jobs.cheese-eval.model"; "" for none
    message: str

    def __str__(self) -> str:
        if self.field:
            return f"{self.location}: {self.field}: {self.message}"
        return f"{self.location}: {self.message}"


class ConfigError(ReconcilerError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        super().__init__(self.format())

    def format(self) -> str:
        n = len(self.problems)
        lines = [str(p) for p in self.problems]
        lines.append(f"{n} problem{'s' if n != 1 else ''} found.")
        return "\n".join(lines)


class ApiError(ReconcilerError):
    """An error answer from the API (or no answer at all, ``status`` None).

    ``request`` is "METHOD path" only: never a header, never the key.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request: str = "",
        details: Sequence[str] = (),
    ) -> None:
        self.message = message
        self.status = status
        self.request = request
        self.details = tuple(details)
        super().__init__(self.format())

    def format(self) -> str:
        head = self.message
        if self.request:
            code = f" (HTTP {self.status})" if self.status is not None else ""
            head = f"{self.request}{code}: {self.message}"
        return "\n".join([head, *(f"  {d}" for d in self.details)])


class UnknownOutcome(ApiError):
    """A non-idempotent request was sent, but whether the server acted on it is unknown."""


class GuardError(ReconcilerError):
    exit_code = ExitCode.BLOCKED


class StalePlanError(ReconcilerError):
    exit_code = ExitCode.STALE


class ApplyFailed(ReconcilerError):
    pass
