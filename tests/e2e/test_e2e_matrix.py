"""A matrix of 2 models x 2 datasets minus one, with requests generated from rows, applied
by the real CLI against a served emulator: the right names, models, request counts and
generated input files; an edited row re-runs only the jobs reading it."""

from __future__ import annotations

import json
from typing import Any

from e2e.harness import E2E, jsonl, plan_json, planned

MATRIX = "qa-${{ matrix.model }}-${{ matrix.dataset }}"


def entry() -> dict[str, Any]:
    return {
        "matrix": {
            "model": ["mistral-small-latest", "mistral-medium-latest"],
            "dataset": ["cheese", "wine"],
            "exclude": [{"model": "mistral-medium-latest", "dataset": "wine"}],
        },
        "model": "${{ matrix.model }}",
        "metadata": {"dataset": "${{ matrix.dataset }}"},
        "prompts": {
            "rows": "../data/${{ matrix.dataset }}.jsonl",
            "custom_id": "${{ matrix.dataset }}-${{ row.id }}",
            "body": {
                "max_tokens": "${{ row.n }}",
                "messages": [{"role": "user", "content": "Question: ${{ row.q }}"}],
            },
        },
    }


def rows(n: int, word: str) -> list[dict[str, Any]]:
    return [{"id": i, "q": f"{word} {i}?", "n": 10 + i} for i in range(n)]


def test_a_matrix_with_prompts_applies_as_its_expanded_jobs(e2e: E2E) -> None:
    root = e2e.root("matrix", {MATRIX: entry()})
    root.input_file("cheese.jsonl", rows(3, "cheese"))
    root.input_file("wine.jsonl", rows(2, "wine"))
    root.write()

    validated = e2e.cli.ok(root, "validate", server=False)
    assert "3 jobs (3 from matrices)" in validated.stdout
    planned_doc = plan_json(e2e.cli.run(root, "plan", "--format", "json"))
    names = [
        "qa-mistral-medium-latest-cheese",
        "qa-mistral-small-latest-cheese",
        "qa-mistral-small-latest-wine",
    ]
    assert sorted(planned(planned_doc, "create")) == names
    e2e.cli.ok(root, "apply", "--auto-approve")

    live = e2e.live.by_name(root.workspace)
    assert sorted(live) == names
    expected = {
        "qa-mistral-medium-latest-cheese": ("mistral-medium-latest", "cheese", 3),
        "qa-mistral-small-latest-cheese": ("mistral-small-latest", "cheese", 3),
        "qa-mistral-small-latest-wine": ("mistral-small-latest", "wine", 2),
    }
    sdk = e2e.live.sdk
    contents: dict[str, bytes] = {}
    for name, (model, dataset, count) in expected.items():
        (job,) = live[name]
        assert (job.model, job.metadata["dataset"]) == (model, dataset)
        got = sdk.batch.jobs.get(job_id=job.id)
        assert got.total_requests == count
        (file_id,) = got.input_files
        contents[name] = sdk.files.download(file_id=file_id).read()
    lines = [json.loads(line) for line in contents["qa-mistral-small-latest-wine"].splitlines()]
    assert lines == [
        {
            "custom_id": f"wine-{i}",
            "body": {
                "max_tokens": 10 + i,
                "messages": [{"role": "user", "content": f"Question: wine {i}?"}],
            },
        }
        for i in range(2)
    ]
    # Two models over one dataset generate the same bytes: one upload, shared.
    assert contents["qa-mistral-small-latest-cheese"] == contents["qa-mistral-medium-latest-cheese"]
    assert e2e.admin.count("POST", "/v1/files") == 2
    cache = root.path / ".reconciler" / "cache"
    leftovers = [f for f in cache.rglob("*") if f.is_file() and "tmp" in f.name]
    assert leftovers == []  # temporary files are gone (estimates stay: they are the cache)

    # Nothing to do; then one edited row re-runs only the job reading it.
    again = e2e.cli.run(root, "plan", "--detailed-exitcode")
    assert again.code == 0, str(again)
    edited = rows(2, "wine")
    edited[1]["q"] = "Which wine with comté?"
    (root.path / "data" / "wine.jsonl").write_text(jsonl(edited))
    changed = plan_json(e2e.cli.run(root, "plan", "--format", "json"))
    assert planned(changed, "create") + planned(changed, "replace") == [
        "qa-mistral-small-latest-wine"
    ]
    e2e.cli.ok(root, "apply", "--auto-approve")
    assert e2e.live.per_name(root.workspace) == {
        "qa-mistral-medium-latest-cheese": 1,
        "qa-mistral-small-latest-cheese": 1,
        "qa-mistral-small-latest-wine": 2,
    }
