"""Model names are checked against the server's catalogue before anything is created.

``mistral-smal-latest`` is valid YAML and a valid string, so ``validate`` (offline, it
cannot know the catalogue) lets it through; the API refuses it at create time, after other
jobs of the same apply were created. ``plan`` and ``apply`` read ``GET /v1/models`` once
(only when the plan creates something) and refuse such a name with the place it was written
(``file:line:col``, the job or ``defaults:``) and the closest real name.

A model counts as known when it is a card's ``id`` or one of its ``aliases``; fine-tuned
models (``ft:…``) always pass (a key may use fine-tunes of other workspaces the listing does
not show); jobs with an ``agent_id`` have no model. A server without ``GET /v1/models``
(404) cannot be checked: the caller warns and goes on.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from reconciler.config.model import JobSpec
from reconciler.errors import Location, Problem

FINE_TUNED_PREFIX: Final = "ft:"
_LISTED_JOBS: Final = 3


def known_names(cards: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Every name a model of the listing answers to: ids and aliases."""
    names: set[str] = set()
    for card in cards:
        model_id = card.get("id")
        if isinstance(model_id, str) and model_id:
            names.add(model_id)
        aliases = card.get("aliases")
        if isinstance(aliases, list):
            names.update(a for a in aliases if isinstance(a, str) and a)
    return frozenset(names)


def needs_checking(spec: JobSpec) -> bool:
    return spec.model is not None and not spec.model.startswith(FINE_TUNED_PREFIX)


def unknown_models(
    specs: Iterable[JobSpec], known: frozenset[str], *, server: str
) -> list[Problem]:
    """One problem per place an unknown model is written (a typo in ``defaults:`` is
    reported once, naming the jobs that inherit it)."""
    places: dict[tuple[Location, str, str], list[str]] = {}
    for spec in specs:
        if not needs_checking(spec) or spec.model in known:
            continue
        assert spec.model is not None
        where = spec.model_source or spec.source
        fld = spec.model_field or f"jobs.{spec.name}.model"
        places.setdefault((where, fld, spec.model), []).append(spec.name)
    problems = []
    for (where, fld, model), jobs in sorted(places.items()):
        message = f"model {model!r} is not served by {server}{_suggestion(model, known)}"
        if not fld.startswith("jobs.") or len(jobs) > 1:
            message += f" (used by {_jobs(sorted(set(jobs)))})"
        problems.append(Problem(where, fld, message))
    return problems


def _suggestion(model: str, known: frozenset[str]) -> str:
    close = difflib.get_close_matches(model, sorted(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _jobs(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_LISTED_JOBS])
    if len(names) > _LISTED_JOBS:
        shown += f" and {len(names) - _LISTED_JOBS} more"
    return f"job{'s' if len(names) != 1 else ''} {shown}"
