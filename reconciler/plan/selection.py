"""Which jobs a plan covers: ``--target`` / ``--exclude`` (shell-style globs, repeatable)
and which it re-runs on request: ``--replace``.

Pure: patterns and names in, names out. A pattern is matched against every job name the
plan knows, in the configuration or live (a job removed from the configuration can be
targeted by its name, to delete just it). The planner plans only the selected names; the
shell refuses a pattern that matches nothing (:attr:`Resolved.problems`) before planning,
because a typo would otherwise silently plan nothing.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection
from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Selection:
    """The flags as given (patterns, in order)."""

    targets: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    replace: tuple[str, ...] = ()

    @property
    def limits(self) -> bool:
        """True when only some jobs are planned."""
        return bool(self.targets or self.excludes)

    @property
    def given(self) -> bool:
        return bool(self.targets or self.excludes or self.replace)


@dataclass(frozen=True)
class Resolved:
    names: frozenset[str]  # the job names to plan
    replace: frozenset[str]  # the job names to re-run (a subset of names, all desired)
    total: int  # every job name known
    problems: tuple[str, ...] = ()  # one sentence per pattern that cannot be honoured


def matches(pattern: str, names: Collection[str]) -> list[str]:
    return sorted(n for n in names if fnmatchcase(n, pattern))


def resolve(selection: Selection, desired: Collection[str], live: Collection[str]) -> Resolved:
    """``desired``: names in the configuration; ``live``: names with a managed live job."""
    known = set(desired) | set(live)
    problems: list[str] = []

    def matched(flag: str, pattern: str, among: Collection[str]) -> set[str]:
        found = matches(pattern, among)
        if not found:
            problems.append(f"{flag} {pattern!r} matches no job{_suggestion(pattern, known)}")
        return set(found)

    names = set(known)
    if selection.targets:
        names = set().union(*(matched("--target", p, known) for p in selection.targets))
    for pattern in selection.excludes:
        names -= matched("--exclude", pattern, known)

    replace: set[str] = set()
    for pattern in selection.replace:
        found = matches(pattern, known)
        if not found:
            problems.append(f"--replace {pattern!r} matches no job{_suggestion(pattern, known)}")
            continue
        absent = [n for n in found if n not in desired]
        outside = [n for n in found if n in desired and n not in names]
        if absent and len(absent) == len(found):
            problems.append(
                f"--replace {pattern!r}: {_names(absent)} not in the configuration, so there "
                "is no spec to run again"
            )
        elif outside and len(outside) + len(absent) == len(found):
            problems.append(
                f"--replace {pattern!r}: {_names(outside)} not selected by --target/--exclude"
            )
        replace |= {n for n in found if n in desired and n in names}
    return Resolved(frozenset(names), frozenset(replace), len(known), tuple(problems))


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{shown} {'is' if len(names) == 1 else 'are'}"


def _suggestion(pattern: str, known: Collection[str]) -> str:
    close = difflib.get_close_matches(pattern, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
