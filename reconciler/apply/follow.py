"""Follow jobs to a terminal state, with one progress bar per job.

Live state is re-read with the list endpoint on every poll (⌈managed/page_size⌉ calls),
never with one GET per job, so following a thousand jobs costs what following one does.
Names and ids are escaped for the terminal (:mod:`reconciler.render.safe`) before they
are drawn: they come from the API.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from reconciler.api import Status
from reconciler.client import MistralClient
from reconciler.errors import ReconcilerError
from reconciler.live import LiveJob, LiveState, read_live_state
from reconciler.render.safe import terminal

BAR_WIDTH = 24
_GREEN, _RED, _YELLOW, _RESET = "\x1b[32m", "\x1b[31m", "\x1b[33m", "\x1b[0m"


def current_versions(state: LiveState) -> dict[str, LiveJob]:
    """The newest live job of each name: what ``wait`` and ``status`` follow."""
    return {name: versions[-1] for name, versions in state.by_name().items()}


@dataclass(frozen=True)
class FollowResult:
    jobs: dict[str, LiveJob]  # the final state of every followed job
    timed_out: bool = False

    @property
    def unsuccessful(self) -> dict[str, LiveJob]:
        return {n: j for n, j in self.jobs.items() if j.status is not Status.SUCCESS}

    def report(self) -> str:
        n = len(self.jobs)
        ok = n - len(self.unsuccessful)
        if self.timed_out:
            pending = [name for name, job in self.jobs.items() if not job.is_terminal]
            shown = ", ".join(terminal(name) for name in pending)
            head = f"Timed out: {len(pending)} of {n} jobs still running ({shown})."
        else:
            head = f"{n} job{'s' if n != 1 else ''} finished: {ok} succeeded"
            failed = [j for j in self.unsuccessful.values() if j.is_terminal]
            head += f", {len(failed)} did not." if failed else "."
        lines = [head]
        for name, job in sorted(self.unsuccessful.items()):
            if job.is_terminal:
                lines.append(
                    f"  - {terminal(name)}: {job.status} [id={terminal(job.id)}] "
                    f"({job.succeeded_requests}/{job.total_requests} requests succeeded)"
                )
        return "\n".join(lines)


def bar(job: LiveJob, *, width: int = BAR_WIDTH, color: bool = False) -> str:
    total = job.total_requests
    done = job.completed_requests
    filled = width if job.status is Status.SUCCESS else (done * width // total if total else 0)
    body = "#" * filled + "-" * (width - filled)
    status = str(job.status)
    if color:
        tint = (
            _GREEN
            if job.status is Status.SUCCESS
            else _RED
            if job.is_terminal
            else _YELLOW
            if job.status is Status.CANCELLATION_REQUESTED
            else ""
        )
        if tint:
            status = f"{tint}{status}{_RESET}"
    return f"[{body}] {done:>6}/{total:<6} {status}"


class Follower:
    def __init__(
        self,
        client: MistralClient,
        workspace: str,
        *,
        out: TextIO,
        tty: bool,
        color: bool,
        poll: float = 1.0,
        quiet_interval: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._workspace = workspace
        self._out = out
        self._tty = tty
        self._color = color
        self._poll = poll
        self._quiet_interval = quiet_interval
        self._sleep = sleep
        self._monotonic = monotonic
        self._drawn = 0  # lines of the last TTY frame
        self._last_line: dict[str, str] = {}
        self._last_status: dict[str, Status] = {}
        self._last_print: dict[str, float] = {}

    def follow(self, names: Sequence[str], *, timeout: float | None = None) -> FollowResult:
        started = self._monotonic()
        while True:
            current = current_versions(read_live_state(self._client, self._workspace))
            missing = [n for n in names if n not in current]
            if missing:
                shown = ", ".join(terminal(name) for name in missing)
                raise ReconcilerError(f"no live job named {shown} to follow")
            jobs = {n: current[n] for n in names}
            self._draw(jobs)
            if all(job.is_terminal for job in jobs.values()):
                return FollowResult(jobs)
            if timeout is not None and self._monotonic() - started >= timeout:
                return FollowResult(jobs, timed_out=True)
            self._sleep(self._poll)

    def _draw(self, jobs: dict[str, LiveJob]) -> None:
        names = {n: terminal(n) for n in jobs}
        width = max((len(shown) for shown in names.values()), default=0)
        lines = {n: f"{names[n]:<{width}}  {bar(j, color=self._color)}" for n, j in jobs.items()}
        if self._tty:
            if self._drawn:
                self._out.write(f"\x1b[{self._drawn}F")
            for line in lines.values():
                self._out.write(f"\x1b[2K{line}\n")
            self._drawn = len(lines)
            self._out.flush()
            return
        # Not a terminal (CI logs): a line when a job's status changes, and at most one
        # progress line per job every quiet_interval seconds.
        now = self._monotonic()
        for name, line in lines.items():
            job = jobs[name]
            status_changed = self._last_status.get(name) is not job.status
            due = now - self._last_print.get(name, -1e9) >= self._quiet_interval
            if line != self._last_line.get(name) and (status_changed or due):
                self._out.write(line + "\n")
                self._last_print[name] = now
            self._last_line[name] = line
            self._last_status[name] = job.status
        self._out.flush()
