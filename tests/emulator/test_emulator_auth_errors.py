"""Auth (401, api_keys, one user per token) and the error answers: 404, 400, 405, 422."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from emulator_support import (
    FILES,
    JOBS,
    chat_request,
    create_job,
    get_job,
    jsonl,
    unknown_id,
    upload,
)

from reconciler.emulator import Emulator, ManualClock, in_process_client


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer    "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "token-without-scheme"},
    ],
)
def test_missing_or_malformed_bearer_token_is_401(
    emulator: Emulator, headers: dict[str, str]
) -> None:
    with httpx.Client(
        base_url="http://emulator.invalid",
        transport=__import__("reconciler.emulator", fromlist=["x"]).InProcessTransport(emulator),
    ) as client:
        for method, path in (("GET", JOBS), ("POST", JOBS), ("GET", FILES), ("GET", "/v1/nope")):
            response = client.request(method, path, headers=headers)
            assert response.status_code == 401
            body = response.json()
            assert body["message"] == "Unauthorized" and body["request_id"]
    assert [entry.status for entry in emulator.request_log()] == [401] * 4


def test_any_non_empty_token_is_accepted_by_default(
    emulator_client_for: Callable[[str], httpx.Client],
) -> None:
    for token in ("a", "sk-anything", "x" * 200):
        assert emulator_client_for(token).get(JOBS).status_code == 200


def test_api_keys_restrict_tokens_and_are_stored_hashed(
    tmp_path: Path, emulator_clock: ManualClock
) -> None:
    db = tmp_path / "keys.sqlite3"
    with Emulator(db, clock=emulator_clock, api_keys=["key-one", "key-two"]) as emu:
        for token, status in (("key-one", 200), ("key-two", 200), ("key-three", 401)):
            with in_process_client(emu, api_key=token) as client:
                assert client.get(JOBS).status_code == status
    # Another process opening the database sees the restriction...
    with Emulator(db, clock=emulator_clock) as emu, in_process_client(emu, api_key="x") as client:
        assert client.get(JOBS).status_code == 401
    # ...and no token is stored in clear anywhere in it.
    raw = db.read_bytes() + (
        db.with_name(db.name + "-wal").read_bytes()
        if db.with_name(db.name + "-wal").exists()
        else b""
    )
    assert b"key-one" not in raw and b"key-two" not in raw
    # An empty list lifts the restriction.
    with (
        Emulator(db, clock=emulator_clock, api_keys=[]) as emu,
        in_process_client(emu, api_key="x") as client,
    ):
        assert client.get(JOBS).status_code == 200


def test_created_by_me_tells_tokens_apart(
    emulator_client_for: Callable[[str], httpx.Client],
) -> None:
    alice, bob = emulator_client_for("alice"), emulator_client_for("bob")
    mine = create_job(alice)
    create_job(bob)
    create_job(bob)
    assert alice.get(JOBS).json()["total"] == 3  # the organisation's jobs
    by_alice = alice.get(JOBS, params={"created_by_me": "true"}).json()
    assert by_alice["total"] == 1 and by_alice["data"][0]["id"] == mine["id"]
    assert bob.get(JOBS, params={"created_by_me": "true"}).json()["total"] == 2
    assert alice.get(JOBS, params={"created_by_me": "false"}).json()["total"] == 3


def test_user_visibility_files_are_their_owners_alone(
    emulator_client_for: Callable[[str], httpx.Client],
) -> None:
    alice, bob = emulator_client_for("alice"), emulator_client_for("bob")
    private = upload(alice, jsonl([chat_request("0")]), visibility="user")
    shared = upload(alice, jsonl([chat_request("0")]))
    assert alice.get(f"{FILES}/{private['id']}").status_code == 200
    assert bob.get(f"{FILES}/{private['id']}").status_code == 404
    assert [f["id"] for f in bob.get(FILES).json()["data"]] == [shared["id"]]
    refused = bob.post(
        JOBS,
        json={
            "endpoint": "/v1/chat/completions",
            "model": "mistral-small-latest",
            "input_files": [private["id"]],
        },
    )
    assert refused.status_code == 422


# --- 404 / 400 / 405 / 422 on ids ----------------------------------------------------------


def assert_error_shape(response: httpx.Response, status: int, needle: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["object"] == "error" and body["type"] == "invalid_request_error"
    assert body["param"] is None and body["code"] is None
    assert needle in body["message"]


@pytest.mark.parametrize(
    ("method", "template"),
    [
        ("GET", f"{JOBS}/{{}}"),
        ("POST", f"{JOBS}/{{}}/cancel"),
        ("DELETE", f"{JOBS}/{{}}"),
        ("GET", f"{FILES}/{{}}"),
        ("GET", f"{FILES}/{{}}/content"),
        ("DELETE", f"{FILES}/{{}}"),
    ],
)
def test_unknown_ids_are_404_with_a_clear_message(
    emulator_client: httpx.Client, method: str, template: str
) -> None:
    ident = unknown_id()
    assert_error_shape(emulator_client.request(method, template.format(ident)), 404, ident)


@pytest.mark.parametrize("path", [f"{JOBS}/abc", f"{FILES}/abc", f"{FILES}/abc/content"])
def test_malformed_ids_are_422_like_fastapi(emulator_client: httpx.Client, path: str) -> None:
    response = emulator_client.get(path)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "uuid_parsing"
    assert response.json()["detail"][0]["loc"][0] == "path"


def test_deleted_things_are_404(emulator_client: httpx.Client, emulator_clock: ManualClock) -> None:
    job = create_job(emulator_client)
    emulator_clock.advance(5)
    assert emulator_client.delete(f"{JOBS}/{job['id']}").json() == {
        "id": job["id"],
        "object": "batch",
        "deleted": True,
    }
    assert_error_shape(emulator_client.get(f"{JOBS}/{job['id']}"), 404, job["id"])
    assert_error_shape(emulator_client.delete(f"{JOBS}/{job['id']}"), 404, job["id"])
    assert emulator_client.get(JOBS).json()["total"] == 0
    file = upload(emulator_client, b"{}\n")
    assert emulator_client.delete(f"{FILES}/{file['id']}").json() == {
        "id": file["id"],
        "object": "file",
        "deleted": True,
    }
    assert_error_shape(emulator_client.get(f"{FILES}/{file['id']}/content"), 404, file["id"])


def test_deleting_a_job_keeps_its_result_files(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client)
    emulator_clock.advance(5)
    output = get_job(emulator_client, job["id"])["output_file"]
    emulator_client.delete(f"{JOBS}/{job['id']}").raise_for_status()
    assert emulator_client.get(f"{FILES}/{output}/content").status_code == 200


def test_cancel_of_a_finished_job_is_400(
    emulator_client: httpx.Client, emulator_clock: ManualClock
) -> None:
    job = create_job(emulator_client)
    emulator_clock.advance(5)
    assert_error_shape(
        emulator_client.post(f"{JOBS}/{job['id']}/cancel"), 400, "already finished (SUCCESS)"
    )
    assert get_job(emulator_client, job["id"])["status"] == "SUCCESS"


@pytest.mark.parametrize(("advance", "status"), [(0.0, "QUEUED"), (1.001, "RUNNING")])
def test_delete_of_an_active_job_is_400(
    emulator_client: httpx.Client, emulator_clock: ManualClock, advance: float, status: str
) -> None:
    job = create_job(emulator_client, requests=[chat_request(str(i)) for i in range(100)])
    emulator_clock.advance(advance)
    assert_error_shape(emulator_client.delete(f"{JOBS}/{job['id']}"), 400, status)
    emulator_client.post(f"{JOBS}/{job['id']}/cancel").raise_for_status()
    assert_error_shape(emulator_client.delete(f"{JOBS}/{job['id']}"), 400, "CANCELLATION_REQUESTED")
    emulator_clock.advance(1)
    assert emulator_client.delete(f"{JOBS}/{job['id']}").status_code == 200


def test_unknown_routes_and_methods(emulator_client: httpx.Client) -> None:
    assert emulator_client.get("/v1/nope").status_code == 404
    assert emulator_client.get("/v1/nope").json() == {"detail": "Not Found"}
    response = emulator_client.put(JOBS)
    assert response.status_code == 405 and response.json() == {"detail": "Method Not Allowed"}
    # The admin API is not reachable as an API route with a token either way.
    assert emulator_client.get("/v1/_emulator/faults").status_code == 404


def test_invalid_query_parameters_are_422(emulator_client: httpx.Client) -> None:
    for params, loc in (
        ({"page": "x"}, ["query", "page"]),
        ({"page": "-1"}, ["query", "page"]),
        ({"page_size": "0"}, ["query", "page_size"]),
        ({"page_size": "1001"}, ["query", "page_size"]),
        ({"order_by": "name"}, ["query", "order_by"]),
        ({"status": ["QUEUED", "DONE"]}, ["query", "status", 1]),
        ({"created_after": "yesterday"}, ["query", "created_after"]),
        ({"created_by_me": "maybe"}, ["query", "created_by_me"]),
        ({"metadata": "[1]"}, ["query", "metadata"]),
    ):
        response = emulator_client.get(JOBS, params=params)
        assert response.status_code == 422, params
        assert [item["loc"] for item in response.json()["detail"]] == [loc]
    inline = emulator_client.get(f"{JOBS}/{unknown_id()}", params={"inline": "perhaps"})
    assert inline.status_code == 422


def test_the_database_holds_no_token(emulator: Emulator, emulator_client: httpx.Client) -> None:
    create_job(emulator_client)
    conn = sqlite3.connect(emulator.db_path)
    try:
        owners = {row[0] for row in conn.execute("SELECT owner FROM jobs")}
    finally:
        conn.close()
    assert owners and "test-token" not in owners
    assert all(len(owner) == 64 for owner in owners)  # sha256 hex
