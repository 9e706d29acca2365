"""Model names against the catalogue: known by id or alias, fine-tunes pass, a typo is
reported where it is written with the closest real name (once for ``defaults:``); and
``MistralClient.list_models`` reads the listing the SDK's ``models.list`` reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler import models
from reconciler.client import MistralClient
from reconciler.config.model import JobSpec
from reconciler.emulator import LOCAL_BASE_URL, Emulator, InProcessTransport
from reconciler.errors import ApiError, Location, Problem

CARDS: list[dict[str, Any]] = [
    {"id": "mistral-small-2603", "aliases": ["mistral-small-latest"]},
    {"id": "mistral-large-latest", "aliases": ["mistral-large-2512"]},
    {"id": "codestral-latest"},  # no aliases key at all
    {"id": 7, "aliases": "junk"},  # hostile cards are ignored, not fatal
]


def job(name: str, model: str | None, where: Location | None = None, fld: str = "") -> JobSpec:
    return JobSpec(
        name=name,
        endpoint="/v1/chat/completions",
        model=model,
        agent_id=None if model else "ag-1",
        input_files=("f",),
        source=Location("jobs/a.yaml", 2, 3),
        model_source=where,
        model_field=fld,
    )


def test_known_names_are_ids_and_aliases() -> None:
    assert models.known_names(CARDS) == {
        "mistral-small-2603",
        "mistral-small-latest",
        "mistral-large-latest",
        "mistral-large-2512",
        "codestral-latest",
    }


def test_typos_are_named_where_written_with_a_suggestion() -> None:
    known = models.known_names(CARDS)
    own = Location("jobs/a.yaml", 4, 12)
    default = Location("reconciler.yaml", 6, 10)
    specs = [
        job("ok", "mistral-small-latest"),
        job("tuned", "ft:mistral-small-latest:x:1"),
        job("agent", None),
        job("typo", "mistral-smal-latest", own, "jobs.typo.model"),
        job("d1", "codestrall", default, "defaults.model"),
        job("d2", "codestrall", default, "defaults.model"),
        job("far", "gpt-4", Location("jobs/a.yaml", 9, 12), "jobs.far.model"),
    ]
    assert models.unknown_models(specs, known, server="api.mistral.ai") == [
        Problem(
            Location("jobs/a.yaml", 4, 12),
            "jobs.typo.model",
            "model 'mistral-smal-latest' is not served by api.mistral.ai; did you mean "
            "'mistral-small-latest'?",
        ),
        Problem(
            Location("jobs/a.yaml", 9, 12),
            "jobs.far.model",
            "model 'gpt-4' is not served by api.mistral.ai",
        ),
        Problem(
            default,
            "defaults.model",
            "model 'codestrall' is not served by api.mistral.ai; did you mean "
            "'codestral-latest'? (used by jobs d1, d2)",
        ),
    ]


def test_list_models_reads_the_listing(tmp_path: Path) -> None:
    emulator = Emulator(tmp_path / "db.sqlite3")
    with MistralClient(LOCAL_BASE_URL, "t", transport=InProcessTransport(emulator)) as client:
        cards = client.list_models()
    assert "mistral-small-latest" in models.known_names(cards)
    assert all(isinstance(card["id"], str) for card in cards)


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"detail": "Not Found"}, "HTTP 404"),
        (200, {"object": "list"}, "no 'data' array"),
    ],
)
def test_list_models_errors(status: int, body: object, error: str) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", "/v1/models")
        return httpx.Response(status, json=body)

    transport = httpx.MockTransport(answer)
    with (
        MistralClient("http://127.0.0.1:9", "t", transport=transport, sleep=lambda _: None) as c,
        pytest.raises(ApiError, match=error) as caught,
    ):
        c.list_models()
    assert caught.value.status == status
