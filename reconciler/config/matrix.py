"""``matrix:`` expansion with GitHub Actions' semantics (pure, no I/O).

    matrix:
      model: [mistral-small-latest, mistral-medium-latest]   # a key: a list of values
      dataset: [cheese, wine]
      exclude: [{model: mistral-medium-latest, dataset: wine}]
      include: [{model: mistral-large-latest, dataset: cheese, tier: big}]

1. The keys other than ``include``/``exclude`` give the cartesian product of their
   values, in the order written: the first key varies slowest.
2. ``exclude`` removes every combination it partially matches: each of its key/value
   pairs equals the combination's (a mapping value matches when its own pairs match, the
   same way, recursively). Its keys must be keys of the matrix.
3. ``include`` is applied after ``exclude``, one entry at a time. An entry extends every
   combination of step 1 whose *original* values it does not overwrite (its pairs for
   original keys are equal; values added by earlier entries may be overwritten). An
   entry that extends none becomes a new combination, after the others; combinations
   made that way are not extended by later entries.
4. No combination at all, or more than :data:`MAX_COMBINATIONS`, is an error (an entry
   that silently vanished would destroy its jobs).

The order of combinations is deterministic: the product's order, then the new ones from
``include`` in the order written. Within a combination, keys come in matrix order, then
in the order ``include`` added them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

MAX_COMBINATIONS: Final = 10_000
RESERVED: Final = ("include", "exclude")
KEY_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}\Z")

PathElem = str | int


@dataclass(frozen=True)
class MatrixProblem:
    path: tuple[PathElem, ...]  # inside the matrix value
    message: str
    at_key: bool = False  # locate the key naming path rather than its value


class MatrixError(ValueError):
    def __init__(self, problems: Sequence[MatrixProblem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class Combination:
    """One combination: (key, value) pairs in order."""

    pairs: tuple[tuple[str, Any], ...]

    def values(self) -> dict[str, Any]:
        return dict(self.pairs)

    def label(self) -> str:
        """``model=mistral-small-latest, dataset=cheese``: how messages name it."""
        return ", ".join(f"{k}={_show(v)}" for k, v in self.pairs)


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _matches(pattern: Any, value: Any) -> bool:
    """``pattern`` partially matches ``value`` (exclude's rule)."""
    if isinstance(pattern, dict) and isinstance(value, dict):
        return all(k in value and _matches(v, value[k]) for k, v in pattern.items())
    return _equal(pattern, value)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: ``1 == 1.0`` but ``true != 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(type(a) is type(b) or (_number(a) and _number(b))) and a == b


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check(matrix: Any) -> list[MatrixProblem]:
    problems: list[MatrixProblem] = []
    if not isinstance(matrix, dict):
        return [MatrixProblem((), "must be a mapping of keys to lists of values")]
    base = [k for k in matrix if k not in RESERVED]
    if not base and not matrix.get("include"):
        problems.append(
            MatrixProblem((), "needs at least one key with a list of values (or include:)")
        )
    for key in base:
        value = matrix[key]
        if not KEY_PATTERN.match(key):
            problems.append(
                MatrixProblem(
                    (key,),
                    "matrix keys start with a letter or '_' and use letters, digits, '_'"
                    " and '-' (at most 64 characters)",
                    at_key=True,
                )
            )
        if not isinstance(value, list):
            problems.append(
                MatrixProblem((key,), f"must be a list of values (write [{_show(value)}] for one)")
            )
        elif not value:
            problems.append(MatrixProblem((key,), "must not be empty"))
    for word in RESERVED:
        if word not in matrix:
            continue
        entries = matrix[word]
        if not isinstance(entries, list):
            problems.append(MatrixProblem((word,), "must be a list of mappings"))
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not entry:
                problems.append(MatrixProblem((word, i), "must be a non-empty mapping"))
                continue
            for key in entry:
                if word == "exclude" and key not in base:
                    problems.append(
                        MatrixProblem(
                            (word, i, key),
                            f"{key!r} is not a key of the matrix (keys: {', '.join(base)})",
                            at_key=True,
                        )
                    )
                elif key in RESERVED or not KEY_PATTERN.match(key):
                    problems.append(
                        MatrixProblem((word, i, key), "not a valid matrix key", at_key=True)
                    )
    return problems


def expand(matrix: Mapping[str, Any]) -> list[Combination]:
    """Every combination of ``matrix``, in order; raises MatrixError with every problem."""
    problems = _check(matrix)
    if problems:
        raise MatrixError(problems)
    base = [k for k in matrix if k not in RESERVED]
    size = 1
    for key in base:
        size *= len(matrix[key])
        if size > MAX_COMBINATIONS:
            raise MatrixError(
                [MatrixProblem((), f"has more than {MAX_COMBINATIONS:,} combinations")]
            )
    excludes: list[dict[str, Any]] = matrix.get("exclude") or []
    includes: list[dict[str, Any]] = matrix.get("include") or []

    combos: list[tuple[tuple[str, Any], ...]] = [()] if base else []
    for key in base:
        combos = [(*c, (key, v)) for c in combos for v in matrix[key]]
    combos = [
        c
        for c in combos
        if not any(all(_matches(v, dict(c)[k]) for k, v in ex.items()) for ex in excludes)
    ]
    # Each base combination: its original values, and what include added (in order).
    extended: list[tuple[dict[str, Any], dict[str, Any]]] = [(dict(c), {}) for c in combos]
    added: list[dict[str, Any]] = []
    for entry in includes:
        matched = False
        for original, extra in extended:
            if all(k not in original or _equal(original[k], v) for k, v in entry.items()):
                matched = True
                for k, v in entry.items():
                    if k not in original:
                        extra[k] = v
        if not matched:
            added.append(dict(entry))
    result = [Combination((*o.items(), *e.items())) for o, e in extended]
    result += [Combination(tuple(a.items())) for a in added]
    if not result:
        raise MatrixError(
            [MatrixProblem((), "expands to no combination (exclude removes them all)")]
        )
    if len(result) > MAX_COMBINATIONS:
        raise MatrixError([MatrixProblem((), f"has more than {MAX_COMBINATIONS:,} combinations")])
    return result
