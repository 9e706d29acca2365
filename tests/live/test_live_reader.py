"""read_live_state / find_by_create_id against a scriptable fake of the list endpoint."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from reconciler import tags
from reconciler.client import MistralClient
from reconciler.live import find_by_create_id, read_live_state

WS = "research-evals"


def job(
    n: int,
    *,
    workspace: str | None = WS,
    name: str | None = "cheese-eval",
    create_id: str | None = None,
    created_at: int | None = None,
    status: str = "SUCCESS",
) -> dict[str, Any]:
    metadata: dict[str, str] = {"team": "research"}
    if workspace is not None:
        metadata[tags.WORKSPACE] = workspace
    if name is not None:
        metadata[tags.JOB] = name
    metadata[tags.CREATE_ID] = create_id or f"cid-{n}"
    return {
        "id": f"job-{n:05d}",
        "object": "batch",
        "input_files": [],
        "endpoint": "/v1/chat/completions",
        "errors": [],
        "status": status,
        "created_at": n if created_at is None else created_at,
        "total_requests": 1,
        "completed_requests": 1,
        "succeeded_requests": 1,
        "failed_requests": 0,
        "model": "m",
        "metadata": metadata,
    }


class FakeServer(httpx.BaseTransport):
    """The list endpoint over a fixed job list, filtering by the exploded metadata params
    like the API (or not at all), paginating oldest or newest first."""

    RESERVED = frozenset({"page", "page_size", "created_by_me", "order_by", "status", "model"})

    def __init__(
        self,
        jobs: list[dict[str, Any]],
        *,
        honour_filter: bool = True,
        window: Callable[[int, int], tuple[int, int]] | None = None,
    ) -> None:
        self.jobs = jobs
        self.honour_filter = honour_filter
        self.window = window or (lambda page, size: (page * size, (page + 1) * size))
        self.queries: list[httpx.QueryParams] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "GET"
        assert request.url.path == "/v1/batch/jobs"
        params = request.url.params
        self.queries.append(params)
        wanted = {k: v for k, v in params.multi_items() if k not in self.RESERVED}
        matching = [
            j
            for j in self.jobs
            if not self.honour_filter
            or all((j.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        matching.sort(key=lambda j: j["created_at"], reverse=params["order_by"] == "-created")
        start, stop = self.window(int(params["page"]), int(params["page_size"]))
        body = {"object": "list", "data": matching[max(0, start) : stop], "total": len(matching)}
        return httpx.Response(200, content=json.dumps(body).encode())


def client_for(server: FakeServer) -> MistralClient:
    return MistralClient("http://127.0.0.1:9", "k", transport=server)


def test_lists_with_the_workspace_filter_oldest_first() -> None:
    server = FakeServer([job(1)])
    state = read_live_state(client_for(server), WS)
    assert [j.id for j in state.jobs] == ["job-00001"]
    (query,) = server.queries
    assert query[tags.WORKSPACE] == WS
    assert query["order_by"] == "created"
    assert query["page_size"] == "100"


def test_foreign_jobs_are_dropped_even_when_the_server_ignores_the_filter() -> None:
    managed = [job(i) for i in range(0, 30, 3)]
    foreign = [
        *(job(i, workspace=None, name=None) for i in range(1, 30, 3)),  # console jobs
        *(job(i, workspace="other-repo") for i in range(2, 30, 3)),  # another repo
        job(40, name=None),  # our workspace tag but no job name: not ours to manage
        job(41, workspace=WS.upper()),  # exact match only
    ]
    for honour in (True, False):
        server = FakeServer(managed + foreign, honour_filter=honour)
        state = read_live_state(client_for(server), WS, page_size=7)
        assert [j.id for j in state.jobs] == [j["id"] for j in managed]
        assert all(j.workspace == WS for j in state.jobs)
        # With the filter honoured, only job 40 (our workspace tag, no name) comes back.
        expected_foreign = 1 if honour else len(foreign)
        assert state.foreign_seen == expected_foreign
        assert state.list_calls == math.ceil((len(managed) + expected_foreign) / 7)


@pytest.mark.parametrize("managed", [0, 1, 99, 100, 101, 250, 1000])
def test_list_calls_are_managed_over_page_size(managed: int) -> None:
    foreign = [job(10_000 + i, workspace="elsewhere") for i in range(300)]
    server = FakeServer([job(i) for i in range(managed)] + foreign)
    client = client_for(server)
    state = read_live_state(client, WS)
    assert len(state.jobs) == managed
    expected = max(1, math.ceil(managed / 100))  # never an extra call after a full page
    assert state.list_calls == expected
    assert client.stats["list_jobs"] == expected
    assert client.attempts["list_jobs"] == expected


def test_duplicates_across_pages_are_read_once() -> None:
    # A server whose pages overlap by two (as if jobs shifted between requests).
    jobs = [job(i) for i in range(25)]
    server = FakeServer(jobs, window=lambda page, size: (page * size - 2 * page, (page + 1) * size))
    state = read_live_state(client_for(server), WS, page_size=10)
    assert [j.id for j in state.jobs] == [j["id"] for j in jobs]
    assert len({j.id for j in state.jobs}) == 25


def test_duplicate_keeps_its_first_position_and_latest_status() -> None:
    first = job(1, created_at=100, status="RUNNING")
    second = job(2, created_at=100)
    pages = [[first, second], [{**first, "status": "SUCCESS"}]]

    class Pages:
        def iter_job_pages(self, **kwargs: Any) -> Any:
            assert kwargs["metadata"] == {tags.WORKSPACE: WS}
            return iter(pages)

    state = read_live_state(Pages(), WS)
    assert [(j.id, j.status.value) for j in state.jobs] == [
        ("job-00001", "SUCCESS"),
        ("job-00002", "SUCCESS"),
    ]
    assert state.list_calls == 2


def test_jobs_are_ordered_oldest_first_then_by_listing_position() -> None:
    jobs = [job(3, created_at=50), job(1, created_at=10), job(2, created_at=10)]
    server = FakeServer(jobs)
    state = read_live_state(client_for(server), WS)
    # job-00001 and job-00002 share a second: the server's oldest-first order decides.
    assert [j.id for j in state.jobs] == ["job-00001", "job-00002", "job-00003"]
    assert [j.seq for j in state.jobs] == [1, 2, 3]
    assert state.by_name()["cheese-eval"][-1].id == "job-00003"


# -- find_by_create_id ---------------------------------------------------------------------


def test_find_by_create_id_finds_the_created_job() -> None:
    server = FakeServer([job(1), job(2, create_id="c-42"), job(3)])
    found = find_by_create_id(client_for(server), WS, "c-42")
    assert found is not None
    assert found.id == "job-00002"
    assert found.create_id == "c-42"
    (query,) = server.queries
    assert query[tags.CREATE_ID] == "c-42"
    assert query[tags.WORKSPACE] == WS


def test_find_by_create_id_none_when_absent() -> None:
    server = FakeServer([job(1), job(3)])
    assert find_by_create_id(client_for(server), WS, "c-42") is None


def test_find_by_create_id_refilters_workspace_and_id() -> None:
    jobs = [job(1), job(2, workspace="other", create_id="c-42"), job(3, create_id="c-43")]
    server = FakeServer(jobs, honour_filter=False)
    assert find_by_create_id(client_for(server), WS, "c-42") is None
    assert find_by_create_id(client_for(server), WS, "c-43") is not None


def test_find_by_create_id_requires_an_id() -> None:
    with pytest.raises(ValueError):
        find_by_create_id(client_for(FakeServer([])), WS, "")
