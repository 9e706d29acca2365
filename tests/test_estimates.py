"""The shell side of cost (reconciler.estimates): which lines a change submits, one cost
item per create and replace, the estimate cache (and its MAC), the budget guard's
violation, and the usage of result files. Config roots are real files read by the real
loader; plans come from the real planner against no or a few live jobs."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pytest
import yaml

from reconciler import estimates
from reconciler.config.loader import load
from reconciler.config.model import DesiredState
from reconciler.config.prompts import iter_request_lines
from reconciler.cost.estimate import Estimate, estimate_lines
from reconciler.cost.tokenizers import counter_for
from reconciler.estimates import (
    INPUT_FILES_UNREAD,
    EstimateCache,
    budget_violation,
    price_table,
    request_lines,
    usage_of_file,
    with_estimate,
)
from reconciler.plan.model import Action, Budget, GuardKind, Plan
from reconciler.plan.planner import Policy, plan
from reconciler.stream.sources import file_lines, inline_lines

KEY = b"k" * 32
CHAT = "/v1/chat/completions"
PROMPT_ROWS = '{"id": 1, "q": "Is Comté a cheese?"}\n{"id": 2, "q": "Is Brie a cheese?"}\n'


def chat(i: int, text: str = "hello there", max_tokens: int | None = 10) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": f"{text} {i}"}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return {"custom_id": str(i), "body": body}


def write_root(root: Path, jobs: dict[str, Any], **config: Any) -> DesiredState:
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    (root / "data").mkdir(exist_ok=True)
    (root / "data" / "tickets.jsonl").write_text(
        "".join(json.dumps(chat(i, "ticket")) + "\n" for i in range(4)) + "\n"
    )
    (root / "data" / "rows.jsonl").write_text(PROMPT_ROWS)
    settings = {
        "version": 1,
        "workspace": "ws",
        "server": "local",
        "defaults": {"endpoint": CHAT, "model": "mistral-small-latest"},
        **config,
    }
    (root / "reconciler.yaml").write_text(yaml.safe_dump(settings))
    (root / "jobs" / "jobs.yaml").write_text(yaml.safe_dump({"jobs": jobs}))
    return load(root)


ALL_SOURCES: dict[str, Any] = {
    "inline": {"requests": [chat(i) for i in range(3)]},
    "local": {"inputs": ["../data/tickets.jsonl"]},
    "prompted": {
        "prompts": {
            "rows": "../data/rows.jsonl",
            "custom_id": "q-${{ row.id }}",
            "body": {"max_tokens": 5, "messages": [{"role": "user", "content": "${{ row.q }}"}]},
        }
    },
    "remote": {"input_files": ["6f1c0a2e-0000-4000-8000-000000000001"]},
}


def planned(desired: DesiredState) -> Plan:
    policy = Policy(max_destroy=10, allow_destroy=None, protected=frozenset())
    return plan(desired.jobs, [], policy, workspace=desired.workspace)


def test_the_lines_of_a_change_are_what_apply_submits(tmp_path: Path) -> None:
    desired = write_root(tmp_path, ALL_SOURCES)
    changes = {c.name: c for c in planned(desired).changes}
    specs = desired.by_name()

    inline = request_lines(changes["inline"], tmp_path)
    assert inline.lines is not None
    assert list(inline.lines()) == list(inline_lines(specs["inline"].requests or []))
    local = request_lines(changes["local"], tmp_path)
    assert local.lines is not None
    assert list(local.lines()) == list(file_lines([tmp_path / "data" / "tickets.jsonl"]))
    assert len(list(local.lines())) == 4  # the blank last line is not a request
    prompted = request_lines(changes["prompted"], tmp_path)
    source = specs["prompted"].prompts
    assert prompted.lines is not None and source is not None
    assert list(prompted.lines()) == list(iter_request_lines(tmp_path, source))
    remote = request_lines(changes["remote"], tmp_path)
    assert (remote.lines, remote.digest, remote.unread) == (None, None, INPUT_FILES_UNREAD)
    # The same content, the same digest; other content, another.
    assert len({inline.digest, local.digest, prompted.digest}) == 3
    again = write_root(tmp_path / "again", ALL_SOURCES)
    (twin,) = [c for c in planned(again).changes if c.name == "inline"]
    assert request_lines(twin, tmp_path / "again").digest == inline.digest


def test_one_cost_item_per_create_and_replace_and_the_unknown_said(tmp_path: Path) -> None:
    desired = write_root(tmp_path, ALL_SOURCES)
    p = with_estimate(
        planned(desired),
        tmp_path,
        price_table(desired.prices),
        Budget(),
        cache=EstimateCache(tmp_path, key=KEY, min_bytes=0),
    )
    assert p.cost is not None and not p.violations
    assert [c.key for c in p.cost.changes] == ["inline", "local", "prompted", "remote"]
    by_key = {c.key: c for c in p.cost.changes}
    counter = counter_for("mistral-small-2603")
    spec = desired.by_name()["local"]
    assert by_key["local"].estimate == estimate_lines(
        file_lines([tmp_path / spec.inputs[0].path]), CHAT, counter
    )
    assert by_key["prompted"].estimate.requests == 2
    assert by_key["prompted"].estimate.output_tokens == 10
    assert by_key["remote"].unread == INPUT_FILES_UNREAD
    assert p.cost.unread == ("remote",) and not p.cost.complete
    assert p.cost.total == sum(
        (c.cost.total for c in p.cost.changes if c.cost.total is not None), Decimal(0)
    )


def test_a_plan_that_creates_nothing_estimates_nothing(tmp_path: Path) -> None:
    desired = write_root(tmp_path, {}, safety={"max_cost": 0})
    p = with_estimate(planned(desired), tmp_path, price_table(()), Budget(Decimal(0)))
    assert p.cost is None and p.violations == ()


def test_estimates_are_cached_and_a_new_plan_reads_no_input(tmp_path: Path) -> None:
    twins = {"a": {"inputs": ["../data/tickets.jsonl"]}, "b": {"inputs": ["../data/tickets.jsonl"]}}
    desired = write_root(tmp_path, twins)
    first = EstimateCache(tmp_path, key=KEY, min_bytes=0)
    p1 = with_estimate(planned(desired), tmp_path, price_table(()), Budget(), cache=first)
    assert first.computed == 1  # two jobs over one input: read once
    second = EstimateCache(tmp_path, key=KEY, min_bytes=0)
    p2 = with_estimate(planned(desired), tmp_path, price_table(()), Budget(), cache=second)
    assert second.computed == 0 and p2.cost == p1.cost
    entries = list((tmp_path / ".reconciler" / "cache" / "estimates").iterdir())
    assert len(entries) == 1
    # Small requests are estimated again rather than read from a file (faster).
    small = write_root(tmp_path / "small", twins)
    default = EstimateCache(tmp_path / "small", key=KEY)
    with_estimate(planned(small), tmp_path / "small", price_table(()), Budget(), cache=default)
    assert not (tmp_path / "small" / ".reconciler").exists() and default.computed == 1


def test_a_planted_or_corrupt_cache_entry_is_a_miss(tmp_path: Path) -> None:
    desired = write_root(tmp_path, {"a": {"inputs": ["../data/tickets.jsonl"]}})
    cache = EstimateCache(tmp_path, key=KEY, min_bytes=0)
    p = with_estimate(planned(desired), tmp_path, price_table(()), Budget(), cache=cache)
    assert p.cost is not None
    true = p.cost.changes[0].estimate
    (entry,) = (tmp_path / ".reconciler" / "cache" / "estimates").iterdir()
    body, _, mac = entry.read_bytes().rpartition(b"\nmac:")
    doc = json.loads(body)
    doc["estimate"]["input_tokens"] = 1  # a cheaper plan, planted by a pull request
    for planted in (
        json.dumps(doc).encode() + b"\nmac:" + mac,  # the old MAC over other bytes
        json.dumps(doc).encode(),  # no MAC at all
        b"\x00garbage",
    ):
        entry.write_bytes(planted)
        fresh = EstimateCache(tmp_path, key=KEY, min_bytes=0)
        again = with_estimate(planned(desired), tmp_path, price_table(()), Budget(), cache=fresh)
        assert again.cost is not None and again.cost.changes[0].estimate == true
        assert fresh.computed == 1
    # Another user's key does not accept this user's entries either.
    other = EstimateCache(tmp_path, key=b"o" * 32, min_bytes=0)
    with_estimate(planned(desired), tmp_path, price_table(()), Budget(), cache=other)
    assert other.computed == 1


def test_the_cache_key_covers_content_endpoint_counter_and_default() -> None:
    cache = EstimateCache(Path("."), key=KEY, min_bytes=0)
    base = cache.name("d" * 64, CHAT, "heuristic (tekken)", 1024)
    assert base != cache.name("e" * 64, CHAT, "heuristic (tekken)", 1024)
    assert base != cache.name("d" * 64, "/v1/fim/completions", "heuristic (tekken)", 1024)
    assert base != cache.name("d" * 64, CHAT, "tekken_240911.json", 1024)
    assert base != cache.name("d" * 64, CHAT, "heuristic (tekken)", 2048)


def test_an_input_changed_while_it_was_estimated_is_not_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    desired = write_root(tmp_path, {"a": {"inputs": ["../data/tickets.jsonl"]}})
    original = estimate_lines

    def racing(lines: Any, *args: Any, **kwargs: Any) -> Estimate:
        found = original(lines, *args, **kwargs)
        with (tmp_path / "data" / "tickets.jsonl").open("a") as fh:
            fh.write(json.dumps(chat(99)) + "\n")
        return found

    monkeypatch.setattr(estimates, "estimate_lines", racing)
    with_estimate(
        planned(desired),
        tmp_path,
        price_table(()),
        Budget(),
        cache=EstimateCache(tmp_path, key=KEY, min_bytes=0),
    )
    assert not (tmp_path / ".reconciler" / "cache" / "estimates").exists() or not list(
        (tmp_path / ".reconciler" / "cache" / "estimates").iterdir()
    )


def test_the_budget_blocks_above_max_cost_and_names_unpriced_models(tmp_path: Path) -> None:
    jobs = {
        "inline": {"requests": [chat(i, "word " * 200) for i in range(50)]},
        "tuned": {"model": "ft:mistral-small-latest:acme:1", "requests": [chat(0)]},
    }
    desired = write_root(tmp_path, jobs)
    table = price_table(())
    cache = EstimateCache(tmp_path, key=KEY, min_bytes=0)
    p = with_estimate(planned(desired), tmp_path, table, Budget(), cache=cache)
    assert p.cost is not None and p.cost.unpriced == ("ft:mistral-small-latest:acme:1",)

    unpriced = budget_violation(p.cost, Budget(Decimal(100), Decimal(1000)))
    assert unpriced is not None and unpriced.guard is GuardKind.MAX_COST
    assert unpriced.names == ("ft:mistral-small-latest:acme:1",)
    assert "--allow-cost cannot cover an unknown amount" in unpriced.message

    only_priced = planned(desired)
    only_priced = Plan(
        workspace=only_priced.workspace,
        changes=tuple(c for c in only_priced.changes if c.name == "inline"),
    )
    cheap = with_estimate(only_priced, tmp_path, table, Budget(Decimal("0.000001")), cache=cache)
    assert [v.guard for v in cheap.violations] == [GuardKind.MAX_COST]
    assert "re-run with --allow-cost=0.01 to accept it" in cheap.violations[0].message
    allowed = with_estimate(
        only_priced, tmp_path, table, Budget(Decimal("0.000001"), Decimal("0.01")), cache=cache
    )
    assert allowed.violations == () and allowed.budget.allow_cost == Decimal("0.01")
    assert all(c.action is Action.CREATE for c in allowed.changes)


class Download:
    """A fetch that writes ``data`` and counts its calls."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls = 0

    def __call__(self, out: IO[bytes]) -> None:
        self.calls += 1
        out.write(self.data)


def result(i: int, prompt: int, completion: int) -> bytes:
    body = {"usage": {"prompt_tokens": prompt, "completion_tokens": completion}}
    line = {"id": f"r{i}", "custom_id": str(i), "response": {"status_code": 200, "body": body}}
    return json.dumps(line).encode() + b"\n"


def test_the_usage_of_a_result_file_is_read_in_blocks_and_cached_by_file_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(estimates, "BLOCK_BYTES", 7)  # lines cut across many blocks
    monkeypatch.setattr(estimates, "MAX_LINE_BYTES", 200)
    long_line = b'{"custom_id": "x", "pad": "' + b"p" * 1000 + b'"}\n'
    data = result(0, 10, 3) + long_line + result(1, 5, 2) + b"\n" + result(2, 1, 1).rstrip()
    fetch = Download(data)
    usage = usage_of_file(tmp_path, "file-out-1", fetch, key=KEY)
    assert (usage.results, usage.with_usage) == (4, 3)
    assert (usage.prompt_tokens, usage.completion_tokens) == (16, 6)
    again = Download(b"")
    assert usage_of_file(tmp_path, "file-out-1", again, key=KEY) == usage
    assert again.calls == 0
    # Another file id, or the entry tampered with: downloaded again.
    assert usage_of_file(tmp_path, "file-out-2", Download(result(0, 1, 1)), key=KEY) != usage
    (entry,) = [
        p
        for p in (tmp_path / ".reconciler" / "cache" / "usage").iterdir()
        if json.loads(p.read_bytes().rpartition(b"\nmac:")[0])["file_id"] == "file-out-1"
    ]
    entry.write_bytes(entry.read_bytes().replace(b'"prompt_tokens":16', b'"prompt_tokens":1'))
    tampered = Download(data)
    assert usage_of_file(tmp_path, "file-out-1", tampered, key=KEY) == usage
    assert tampered.calls == 1
