"""The shell side of cost (DESIGN.md section 8): a plan's estimate, the budget guard, and
what finished jobs actually used. The arithmetic is the pure ``reconciler.cost`` package;
this module decides what to read and caches what it computed.

- :func:`request_lines` is *the* request stream of a change: the lines apply will submit
  (inline requests' canonical lines, local inputs' file lines, prompts' generated lines).
  Jobs on files uploaded by other means (``input_files``) are not read: planning stays
  GET-only and cheap, and their cost is "unknown", said so. Sharded and retry changes
  extend this one function (a shard's lines, a retry subset's).
- :func:`with_estimate` attaches the plan's :class:`~reconciler.cost.budget.PlanCost`
  (one item per create / replace) and the budget guard's violation to a :class:`Plan`;
  a plan that creates nothing estimates nothing.
- :class:`EstimateCache` keeps each change's :class:`Estimate` under
  ``<root>/.reconciler/cache/estimates/``, keyed by (content digest, endpoint, counter,
  default output tokens, tool version), so that re-planning is free. Entries carry an
  HMAC under the user's result-cache key (outside the root): a planted entry (a pull
  request can add files under ``.reconciler/``) cannot lower an estimate below the budget.
- :func:`usage_of_file` sums the ``usage`` of a result file, downloaded streaming and
  cached by file id (result files never change): the actuals ``status --cost`` shows.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

import msgspec

from reconciler import __version__
from reconciler.config.model import JobSpec, PriceOverride, canonical_json
from reconciler.config.prompts import iter_request_lines
from reconciler.cost.actuals import Usage, UsageCounter
from reconciler.cost.budget import (
    BudgetCheck,
    CostItem,
    PlanCost,
    estimate_from_json,
    estimate_plan_cost,
    estimate_to_json,
)
from reconciler.cost.estimate import DEFAULT_OUTPUT_TOKENS, Estimate, estimate_lines
from reconciler.cost.money import format_usd
from reconciler.cost.prices import PriceTable, shipped_table
from reconciler.cost.tokenizers import counter_for
from reconciler.errors import ReconcilerError
from reconciler.plan.model import Budget, Change, GuardKind, Plan, Violation, cost_key, starts_work
from reconciler.stream.cache import CacheDir, CacheError
from reconciler.stream.results import cache_key
from reconciler.stream.sources import file_lines, inline_lines

ESTIMATES_DIR: Final = "estimates"
USAGE_DIR: Final = "usage"
FORMAT: Final = 1
BLOCK_BYTES: Final = 1024 * 1024
CACHE_MIN_BYTES: Final = 64 * 1024  # smaller requests are estimated again: it is faster
MAX_LINE_BYTES: Final = 16 * 1024 * 1024  # a longer result line is skipped (memory bound)
INPUT_FILES_UNREAD: Final = (
    "its requests are in files uploaded by other means (input_files), which planning does not read"
)


class EstimateError(ReconcilerError):
    """A change's requests could not be read to estimate them."""


# -- the request lines of a change -----------------------------------------------------------


@dataclass(frozen=True)
class RequestLines:
    """What a change would submit: its lines (read once per call of ``lines``) and the
    digest of their content, or why they are not read."""

    digest: str | None  # the same digest always means the same lines
    lines: Callable[[], Iterator[bytes]] | None
    unread: str | None = None
    # Local files read: their stat before reading, so that a file changed while it was
    # estimated is never cached under the digest the loader computed.
    files: tuple[tuple[Path, int, int], ...] = ()
    size: int = 0  # bytes behind the lines (what reading them costs), for the cache


def request_lines(change: Change, root: Path) -> RequestLines:
    """The request lines ``change`` would submit (a create or a replace).

    The one place that says what a change sends: a shard or a retry subset is a case
    added here, and every estimate follows."""
    if change.spec is None:
        raise ValueError(f"{change.name}: a {change.action} submits no requests")
    return spec_request_lines(change.spec, root)


def spec_request_lines(spec: JobSpec, root: Path) -> RequestLines:
    """The request lines of a whole job spec, as apply would upload or send them."""
    if spec.requests_json is not None:
        digest = _digest("requests", spec.requests_json)
        requests = spec.requests or []
        return RequestLines(
            digest, lambda: inline_lines(requests), size=len(spec.requests_json.encode())
        )
    if spec.prompts is not None:
        source = spec.prompts
        return RequestLines(
            _digest("prompts", source.digest),
            lambda: iter_request_lines(root, source),
            size=source.rows.size,
        )
    if spec.inputs:
        paths = [_input_path(root, i.path) for i in spec.inputs]
        files = tuple(_stat(path) for path in paths)
        for (_, size, _), item in zip(files, spec.inputs, strict=True):
            if size != item.size:
                raise EstimateError(f"input {item.path} changed while planning: plan again")
        digest = _digest("inputs", ",".join(i.sha256 for i in spec.inputs))
        size = sum(i.size for i in spec.inputs)
        return RequestLines(digest, lambda: file_lines(paths), files=files, size=size)
    return RequestLines(None, None, unread=INPUT_FILES_UNREAD)


def _digest(kind: str, content: str) -> str:
    return hashlib.sha256(f"{kind}:{content}".encode()).hexdigest()


def _input_path(root: Path, rel: str) -> Path:
    # The loader refused paths outside the root; a saved plan's spec is checked again.
    resolved_root = root.resolve()
    path = (resolved_root / rel).resolve()
    if not path.is_relative_to(resolved_root):
        raise EstimateError(f"input {rel} is not a file inside {resolved_root}")
    return path


def _stat(path: Path) -> tuple[Path, int, int]:
    try:
        st = path.stat()
    except OSError as err:
        raise EstimateError(f"cannot read input {path} to estimate its cost: {err}") from None
    return path, st.st_size, st.st_mtime_ns


# -- the estimate cache --------------------------------------------------------------------


class EstimateCache:
    """Estimates under ``<root>/.reconciler/cache/estimates/``, one file per key, each
    with an HMAC (a corrupt or planted entry is a miss). Within one process, estimates
    are also kept in memory (a matrix of jobs over one input reads it once).

    Only requests of at least ``min_bytes`` go to disk: a small job is estimated faster
    than a cache file is written (5,000 inline jobs of 3 requests: 0.4 s estimated, 2.5 s
    with a file each)."""

    def __init__(
        self,
        root: Path,
        *,
        key: bytes | None = None,
        enabled: bool = True,
        min_bytes: int = CACHE_MIN_BYTES,
    ) -> None:
        self.root = root
        self.key = key if key is not None else (cache_key() if enabled else None)
        self.enabled = enabled
        self.min_bytes = min_bytes
        self.memory: dict[str, Estimate] = {}
        self.computed = 0  # estimates computed (cache misses): what tests and people check

    def name(self, digest: str, endpoint: str, counter: str, default_output: int) -> str:
        parts = [FORMAT, __version__, digest, endpoint, counter, default_output]
        return hashlib.sha256(canonical_json(parts).encode()).hexdigest()

    def _on_disk(self, size: int) -> bool:
        return self.key is not None and self.enabled and size >= self.min_bytes

    def get(self, name: str, size: int) -> Estimate | None:
        if name in self.memory:
            return self.memory[name]
        if self.key is None or not self._on_disk(size):
            return None
        try:
            with CacheDir(self.root, ESTIMATES_DIR, create=False) as cache:
                fh = cache.open_read(f"{name}.json")
                if fh is None:
                    return None
                with fh:
                    data = fh.read(1 << 16)
        except (CacheError, OSError):
            return None
        doc = _verified(self.key, data)
        if not isinstance(doc, dict) or doc.get("name") != name:
            return None
        try:
            found = estimate_from_json(doc.get("estimate"))
        except ValueError:
            return None
        self.memory[name] = found
        return found

    def put(self, name: str, estimate: Estimate, size: int) -> None:
        self.memory[name] = estimate
        if self.key is None or not self._on_disk(size):
            return
        doc = {"format": FORMAT, "name": name, "estimate": estimate_to_json(estimate)}
        _store(self.root, ESTIMATES_DIR, f"{name}.json", self.key, doc)


def _verified(key: bytes, data: bytes) -> Any:
    body, sep, mac = data.rpartition(b"\nmac:")
    expected = hmac.new(key, body + b"\n", hashlib.sha256).hexdigest().encode()
    if not sep or not hmac.compare_digest(mac.strip(), expected):
        return None
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        return None


def _store(root: Path, folder: str, name: str, key: bytes, doc: dict[str, Any]) -> None:
    body = msgspec.json.encode(doc) + b"\n"
    mac = hmac.new(key, body, hashlib.sha256).hexdigest().encode()
    with (
        contextlib.suppress(CacheError, OSError),
        CacheDir(root, folder) as cache,
        cache.create(name) as out,
    ):
        out.write(body + b"mac:" + mac + b"\n")


def estimate_spec(
    spec: JobSpec,
    source: RequestLines,
    table: PriceTable,
    cache: EstimateCache,
    *,
    default_output_tokens: int = DEFAULT_OUTPUT_TOKENS,
) -> tuple[Estimate, str]:
    """The estimate of ``source`` (the lines of ``spec`` or of one of its changes) and the
    name of the counter used; from the cache when it holds it."""
    assert source.digest is not None and source.lines is not None
    model = table.resolve(spec.model) if spec.model is not None else None
    counter = counter_for(model)
    name = cache.name(source.digest, spec.endpoint, counter.name, default_output_tokens)
    found = cache.get(name, source.size)
    if found is not None:
        return found, counter.name
    try:
        estimate = estimate_lines(
            source.lines(), spec.endpoint, counter, default_output_tokens=default_output_tokens
        )
    except OSError as err:
        raise EstimateError(
            f"{spec.name}: cannot read its requests to estimate them: {err}"
        ) from None
    except ValueError as err:  # an endpoint the estimator does not know (a plan file's)
        raise EstimateError(f"{spec.name}: {err}") from None
    cache.computed += 1
    if all(_stat(path) == (path, size, mtime) for path, size, mtime in source.files):
        cache.put(name, estimate, source.size)
    return estimate, counter.name


# -- a plan's estimate and the budget guard -------------------------------------------------


def price_table(prices: Iterable[tuple[str, PriceOverride]]) -> PriceTable:
    """The shipped table with ``prices:`` of reconciler.yaml on top."""
    return shipped_table().with_overrides(dict(prices))


def cost_item(change: Change, root: Path, table: PriceTable, cache: EstimateCache) -> CostItem:
    assert change.spec is not None
    spec = change.spec
    source = request_lines(change, root)
    key = cost_key(change)
    if source.unread is not None:
        return CostItem(
            key, spec.model, spec.endpoint, unread=source.unread, agent_id=spec.agent_id
        )
    estimate, counter = estimate_spec(spec, source, table, cache)
    return CostItem(
        key, spec.model, spec.endpoint, estimate=estimate, counter=counter, agent_id=spec.agent_id
    )


def estimate_plan(
    plan: Plan, root: Path, table: PriceTable, cache: EstimateCache
) -> PlanCost | None:
    """The estimate of every create and replace of ``plan``; None when it creates nothing."""
    items = [cost_item(c, root, table, cache) for c in plan.changes if starts_work(c)]
    if not items:
        return None
    return estimate_plan_cost(items, table)


def budget_check(cost: PlanCost | None, budget: Budget) -> BudgetCheck:
    """``safety.max_cost`` against the estimate (never blocked without creates)."""
    if cost is None:
        return BudgetCheck(False)
    return cost.check(budget.max_cost, budget.allow_cost)


def budget_violation(cost: PlanCost | None, budget: Budget) -> Violation | None:
    check = budget_check(cost, budget)
    if not check.blocked or check.message is None or cost is None:
        return None
    return Violation(GuardKind.MAX_COST, check.message, names=cost.unpriced)


def with_estimate(
    plan: Plan,
    root: Path,
    table: PriceTable,
    budget: Budget,
    *,
    cache: EstimateCache | None = None,
) -> Plan:
    """``plan`` with its estimate and budget attached, and the guard's violation when the
    budget blocks it. Reads local inputs (cached); never the API."""
    cost = estimate_plan(plan, root, table, cache or EstimateCache(root))
    return plan.with_cost(cost, budget, budget_violation(cost, budget))


def recheck(
    plan: Plan, root: Path, table: PriceTable, *, cache: EstimateCache | None = None
) -> tuple[Plan, PlanCost | None]:
    """A saved plan's budget checked again against a fresh estimate of its changes (a
    plan file is untrusted, and prices move with upgrades): the plan keeps the estimate it
    was reviewed with, gains the violation when the fresh one is over budget; the fresh
    estimate is returned for the shell to mention when it differs."""
    fresh = estimate_plan(plan, root, table, cache or EstimateCache(root))
    violation = budget_violation(fresh, plan.budget)
    if violation is None:
        return plan, fresh
    return plan.with_cost(plan.cost, plan.budget, violation), fresh


def moved(saved: PlanCost | None, fresh: PlanCost | None) -> str | None:
    """A sentence when a saved plan's estimate differs from the fresh one (by amount)."""
    if saved is None or fresh is None or saved.total == fresh.total:
        return None
    return (
        f"the estimate is {format_usd(fresh.total)} now (prices of {fresh.price_date});"
        f" the plan was reviewed at {format_usd(saved.total)} (prices of {saved.price_date})"
    )


# -- actuals -------------------------------------------------------------------------------


class _UsageSink:
    """A binary sink counting the usage of the result lines written to it."""

    def __init__(self) -> None:
        self.counter = UsageCounter()
        self._tail = b""
        self._skipping = False

    def feed(self, block: bytes) -> None:
        if self._skipping:  # the rest of an over-long line
            nl = block.find(b"\n")
            if nl < 0:
                return
            block, self._skipping = block[nl + 1 :], False
        *lines, self._tail = (self._tail + block).split(b"\n")
        for line in lines:
            self.counter.add_line(line)
        if len(self._tail) > MAX_LINE_BYTES:
            self.counter.add_line(b"-")  # counted as a result without usage
            self._tail, self._skipping = b"", True

    def finish(self) -> Usage:
        if self._tail and not self._skipping:
            self.counter.add_line(self._tail)
        return self.counter.result()


Fetch = Callable[[IO[bytes]], object]


def usage_of_file(root: Path, file_id: str, fetch: Fetch, *, key: bytes | None = None) -> Usage:
    """The summed ``usage`` of one result file: from the cache, else downloaded (to a
    temporary file, streaming) and read once in blocks."""
    mac_key = key if key is not None else cache_key()
    name = f"{hashlib.sha256(file_id.encode()).hexdigest()}.json"
    if mac_key is not None:
        cached = _cached_usage(root, name, file_id, mac_key)
        if cached is not None:
            return cached
    sink = _UsageSink()
    with tempfile.TemporaryFile(prefix="reconciler-usage-") as tmp:
        fetch(tmp)
        tmp.seek(0)
        while block := tmp.read(BLOCK_BYTES):
            sink.feed(block)
    usage = sink.finish()
    if mac_key is not None:
        doc = {"format": FORMAT, "file_id": file_id, "usage": _usage_json(usage)}
        _store(root, USAGE_DIR, name, mac_key, doc)
    return usage


def _usage_json(u: Usage) -> dict[str, Any]:
    return {
        "results": u.results,
        "with_usage": u.with_usage,
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "pages": u.pages,
        "annotated_pages": u.annotated_pages,
        "audio_seconds": str(u.audio_seconds),
    }


def _cached_usage(root: Path, name: str, file_id: str, key: bytes) -> Usage | None:
    try:
        with CacheDir(root, USAGE_DIR, create=False) as cache:
            fh = cache.open_read(name)
            if fh is None:
                return None
            with fh:
                data = fh.read(1 << 16)
    except (CacheError, OSError):
        return None
    doc = _verified(key, data)
    if not isinstance(doc, dict) or doc.get("file_id") != file_id:
        return None
    raw = doc.get("usage")
    if not isinstance(raw, dict):
        return None
    names = ("results", "with_usage", "prompt_tokens", "completion_tokens", "pages")
    counts: dict[str, int] = {}
    for k in (*names, "annotated_pages"):
        v = raw.get(k)
        if type(v) is not int or v < 0:
            return None
        counts[k] = v
    try:
        seconds = Decimal(str(raw.get("audio_seconds")))
    except ArithmeticError:
        return None
    if not seconds.is_finite() or seconds < 0:
        return None
    return Usage(**counts, audio_seconds=seconds)
