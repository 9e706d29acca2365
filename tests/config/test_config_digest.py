"""JobSpec.digest changes exactly when the resolved spec or the input bytes change.

Not when YAML keys are reordered, an input file is renamed, a field moves into defaults,
or a policy field (max_attempts, on_change, prevent_destroy, history_limit) changes.
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.config.loader import load
from reconciler.config.model import JobSpec, canonical_json

MODELS = ["mistral-small-latest", "mistral-medium-latest", "ministral-8b-latest"]
ENDPOINTS = ["/v1/chat/completions", "/v1/embeddings", "/v1/moderations"]
POLICY = ("max_attempts", "on_change", "prevent_destroy", "history_limit")

# Printable text (YAML refuses most control characters written raw).
_text = st.text(
    st.characters(whitelist_categories=("L", "N", "P", "S", "Zs")), min_size=1, max_size=12
)
_key = st.text("abcdefghij-_.", min_size=1, max_size=8)
_body = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.fixed_dictionaries({"role": st.just("user"), "content": _text}),
            min_size=1,
            max_size=2,
        )
    },
    optional={"max_tokens": st.integers(1, 500), "stop": st.lists(_text, max_size=2)},
)
_requests = st.lists(
    st.fixed_dictionaries({"body": _body}, optional={"custom_id": _key}),
    min_size=1,
    max_size=3,
    unique_by=lambda r: str(r.get("custom_id", id(r))),
)


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A job as written in YAML; local inputs as ``{"inputs": [jsonl text, ...]}``."""
    spec: dict[str, Any] = {
        "endpoint": draw(st.sampled_from(ENDPOINTS)),
        "model": draw(st.sampled_from(MODELS)),
        "timeout_hours": draw(st.integers(1, 168)),
        "metadata": draw(st.dictionaries(_key, _text, max_size=3)),
        "max_attempts": draw(st.integers(1, 5)),
        "on_change": draw(st.sampled_from(["replace", "wait"])),
        "prevent_destroy": draw(st.booleans()),
        "history_limit": draw(st.none() | st.integers(0, 5)),
    }
    if draw(st.booleans()):
        spec["requests"] = draw(_requests)
    else:
        files = draw(st.lists(_requests, min_size=1, max_size=2))
        for i, file in enumerate(files):  # custom_ids are unique across a job's files
            for r in file:
                if "custom_id" in r:
                    r["custom_id"] = f"f{i}-{r['custom_id']}"
        spec["inputs"] = [
            "".join(json.dumps(r, sort_keys=draw(st.booleans())) + "\n" for r in file)
            for file in files
        ]
    return spec


def _shuffled(value: Any, rnd: random.Random) -> Any:
    """The same value with every mapping's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rnd) for v in value]
    return value


def digest(
    spec: dict[str, Any],
    *,
    in_defaults: tuple[str, ...] = (),
    file_names: tuple[str, ...] = ("a.jsonl", "b.jsonl"),
    seed: int = 0,
) -> str:
    """Write a root holding ``spec`` (some fields under defaults:), load it, and return the
    job's digest; also checks the digest is the sha256 of the canonical identity."""
    rnd = random.Random(seed)
    job = {k: v for k, v in spec.items() if k not in in_defaults and k != "inputs"}
    defaults = {k: v for k, v in spec.items() if k in in_defaults and k != "inputs"}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "data").mkdir()
        (root / "jobs").mkdir()
        if "inputs" in spec:
            names = []
            for name, content in zip(file_names, spec["inputs"], strict=False):
                (root / "data" / name).parent.mkdir(parents=True, exist_ok=True)
                (root / "data" / name).write_text(content, encoding="utf-8")
                names.append(f"../data/{name}")
            job["inputs"] = names
        config = {"version": 1, "workspace": "ws", "defaults": defaults}
        # JSON is YAML: dump with shuffled keys so key order is exercised.
        text = json.dumps(_shuffled(config, rnd), ensure_ascii=False)
        (root / "reconciler.yaml").write_text(text, encoding="utf-8")
        jobs = {"jobs": {"the-job": _shuffled(job, rnd)}}
        text = json.dumps(jobs, indent=rnd.choice([None, 2]), ensure_ascii=False)
        (root / "jobs" / "j.yaml").write_text(text, encoding="utf-8")
        (loaded,) = load(root).jobs
    expected = hashlib.sha256(canonical_json(loaded.identity()).encode()).hexdigest()
    assert loaded.digest == expected
    return loaded.digest


@settings(max_examples=60, deadline=None)
@given(specs(), st.integers(0, 2**16), st.data())
def test_digest_ignores_key_order_renames_defaults_and_policy(
    spec: dict[str, Any], seed: int, data: st.DataObject
) -> None:
    base = digest(spec)
    # Key order in every mapping (job, metadata, request bodies).
    assert digest(spec, seed=seed) == base
    # Renamed input files with the same bytes.
    assert digest(spec, file_names=("renamed-1.jsonl", "sub/other.jsonl"), seed=seed) == base
    # Fields supplied by defaults instead of the job.
    moved = data.draw(st.sets(st.sampled_from(["endpoint", "model", "timeout_hours", *POLICY])))
    assert digest(spec, in_defaults=tuple(moved), seed=seed) == base
    # Policy fields.
    policy = {
        "max_attempts": data.draw(st.integers(1, 9)),
        "on_change": data.draw(st.sampled_from(["replace", "wait"])),
        "prevent_destroy": data.draw(st.booleans()),
        "history_limit": data.draw(st.none() | st.integers(0, 9)),
    }
    assert digest({**spec, **policy}) == base


def _mutations(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Changes of the resolved spec, each one real (the new value differs)."""
    out = [
        ("model", {**spec, "model": next(m for m in MODELS if m != spec["model"])}),
        ("endpoint", {**spec, "endpoint": next(e for e in ENDPOINTS if e != spec["endpoint"])}),
        ("timeout", {**spec, "timeout_hours": spec["timeout_hours"] % 168 + 1}),
        ("metadata-added", {**spec, "metadata": {**spec["metadata"], "zz-new": "v"}}),
        ("agent", {**{k: v for k, v in spec.items() if k != "model"}, "agent_id": "ag-1"}),
    ]
    if spec["metadata"]:
        key = sorted(spec["metadata"])[0]
        changed = {**spec["metadata"], key: spec["metadata"][key] + "!"}
        removed = {k: v for k, v in spec["metadata"].items() if k != key}
        out += [
            ("metadata-value", {**spec, "metadata": changed}),
            ("metadata-removed", {**spec, "metadata": removed}),
        ]
    if "requests" in spec:
        requests = json.loads(json.dumps(spec["requests"]))
        requests[0]["body"]["messages"][0]["content"] += "?"
        out.append(("request-body", {**spec, "requests": requests}))
        out.append(("request-added", {**spec, "requests": [*spec["requests"], {"body": {}}]}))
        with_id = json.loads(json.dumps(spec["requests"]))
        with_id[0]["custom_id"] = with_id[0].get("custom_id", "") + "-x"
        out.append(("custom-id", {**spec, "requests": with_id}))
    else:
        inputs = list(spec["inputs"])
        inputs[0] = inputs[0].replace('"user"', '"user" ', 1)  # same JSON, other bytes
        out.append(("input-bytes", {**spec, "inputs": inputs}))
        extra = json.dumps({"custom_id": "extra-line", "body": {}}) + "\n"
        out.append(("input-line", {**spec, "inputs": [spec["inputs"][0] + extra, *inputs[1:]]}))
        if len(spec["inputs"]) == 2:
            out.append(("input-order", {**spec, "inputs": spec["inputs"][::-1]}))
    return out


@settings(max_examples=40, deadline=None)
@given(specs())
def test_digest_changes_with_every_change_of_the_resolved_spec(spec: dict[str, Any]) -> None:
    base = digest(spec)
    seen = {base: "base"}
    for name, changed in _mutations(spec):
        if name == "input-order" and spec["inputs"][0] == spec["inputs"][1]:
            continue
        new = digest(changed)
        assert new != base, name
        seen.setdefault(new, name)
    assert len(seen) > 1


def test_digest_is_stable_across_runs() -> None:
    """The digest is stamped on live jobs: it must not depend on the process (no hash
    randomisation, no dict order). A fixed spec has a fixed digest."""
    spec = {
        "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest",
        "timeout_hours": 24,
        "metadata": {"team": "research"},
        "requests": [{"custom_id": "0", "body": {"messages": [{"role": "user", "content": "hi"}]}}],
    }
    identity = {
        "endpoint": "/v1/chat/completions",
        "model": "mistral-small-latest",
        "agent_id": None,
        "inputs": [],
        "input_files": [],
        "requests": [{"custom_id": "0", "body": {"messages": [{"role": "user", "content": "hi"}]}}],
        "metadata": {"team": "research"},
        "timeout_hours": 24,
    }
    assert digest(spec) == hashlib.sha256(canonical_json(identity).encode()).hexdigest()


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(max_size=20),
    requests=st.lists(
        st.fixed_dictionaries(
            {
                "custom_id": st.text(max_size=8),
                "body": st.dictionaries(
                    st.text(max_size=8), st.one_of(st.none(), st.text(max_size=8), st.integers())
                ),
            }
        ),
        max_size=3,
    ),
)
def test_digest_is_the_canonical_identity_hash_whatever_the_values(
    text: str, requests: list[dict[str, Any]]
) -> None:
    # The digest splices the (canonical) inline requests into the identity's JSON without
    # decoding them: values that spell the splice point must not fool it.
    tricky = f'"requests":null,{text}'
    spec = JobSpec(
        name="j",
        endpoint="/v1/chat/completions",
        model=tricky,
        agent_id=None,
        input_files=(tricky,),
        requests_json=canonical_json(requests),
        metadata=(("requests", tricky), (tricky, "null")),
    )
    expected = hashlib.sha256(canonical_json(spec.identity()).encode()).hexdigest()
    assert spec.digest == expected
