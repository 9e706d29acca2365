"""Persistence: state survives restarts, and processes sharing one database lose nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from emulator_support import FILES, JOBS, create_job

from reconciler.emulator import Emulator, Faults, ManualClock, in_process_client

WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from reconciler.emulator import Emulator, in_process_client

    db, tag, count, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    emulator = Emulator(db)  # both processes may initialise the fresh database at once
    while not go.exists():  # start together, to collide as much as possible
        time.sleep(0.005)
    line = b'{"custom_id": "0", "body": {"messages": [{"role": "user", "content": "hi"}]}}\\n'
    with in_process_client(emulator, api_key=tag) as client:
        for i in range(count):
            uploaded = client.post(
                "/v1/files", files={"file": (f"{tag}-{i}.jsonl", line)}, data={"purpose": "batch"}
            )
            uploaded.raise_for_status()
            created = client.post("/v1/batch/jobs", json={
                "endpoint": "/v1/chat/completions", "model": "mistral-small-latest",
                "input_files": [uploaded.json()["id"]], "metadata": {"writer": tag, "i": str(i)},
            })
            created.raise_for_status()
            if i % 10 == 0:
                client.get("/v1/batch/jobs", params={"writer": tag}).raise_for_status()
    emulator.close()
    """
)


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    db, go, count = tmp_path / "shared.sqlite3", tmp_path / "go", 60
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), tag, str(count), str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("alpha", "beta")
    ]
    time.sleep(0.3)  # let both import and open the database
    go.touch()
    for writer in writers:
        _, stderr = writer.communicate(timeout=60)
        assert writer.returncode == 0, stderr

    with Emulator(db, clock=ManualClock(time.time() + 60)) as emu, in_process_client(emu) as client:
        log = emu.request_log()  # both writers' requests, before this test adds its own
        assert len(log) == 2 * (2 * count + count // 10)
        assert {entry.status for entry in log} == {200}
        for tag in ("alpha", "beta"):
            listed = client.get(JOBS, params={"writer": tag, "page_size": 1000}).json()
            assert listed["total"] == count
            assert sorted(int(job["metadata"]["i"]) for job in listed["data"]) == list(range(count))
            assert all(job["status"] == "SUCCESS" for job in listed["data"])
        everything = client.get(JOBS, params={"page_size": 1000}).json()["data"]
        assert len({job["id"] for job in everything}) == 2 * count
        uploads = client.get(FILES, params={"source": "upload", "page_size": 1000}).json()
        assert uploads["total"] == 2 * count
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_state_and_settings_survive_a_restart(tmp_path: Path) -> None:
    db, clock = tmp_path / "e.sqlite3", ManualClock()
    with Emulator(db, clock=clock, speed=4.0, faults=Faults(latency=0.01)) as emu:
        emu.advance(100)
        with in_process_client(emu) as client:
            job = create_job(client, metadata={"k": "v"})
    with Emulator(db, clock=clock) as emu:  # no settings given: the stored ones hold
        settings = emu.settings()
        assert (settings.speed, settings.faults, settings.clock_offset) == (
            4.0,
            Faults(latency=0.01),
            100.0,
        )
        assert emu.now() == clock.now() + 100
        with in_process_client(emu) as client:
            again = client.get(f"{JOBS}/{job['id']}").json()
            assert again["metadata"] == {"k": "v"} and again["status"] == "QUEUED"
            clock.advance(1)  # speed 4: out of the queue after 0.25 s
            assert client.get(f"{JOBS}/{job['id']}").json()["status"] == "SUCCESS"


def test_a_served_process_and_an_in_process_emulator_share_everything(
    tmp_path: Path, emulator_server: Callable[..., Any]
) -> None:
    db = tmp_path / "shared.sqlite3"
    server = emulator_server("--speed", "1", db_path=db)
    local = Emulator(db)  # the system clock, like the server's
    try:
        with (
            httpx.Client(
                base_url=server.url, headers={"Authorization": "Bearer t"}, timeout=10
            ) as remote,
            in_process_client(local) as here,
        ):
            job = create_job(remote, requests=[{"custom_id": "0", "body": {"input": "x"}}],
                             endpoint="/v1/embeddings", model="mistral-embed")  # fmt: skip
            assert here.get(f"{JOBS}/{job['id']}").json()["status"] == "QUEUED"
            local.advance(3600)  # time moves for the server too
            assert remote.get(f"{JOBS}/{job['id']}").json()["status"] == "SUCCESS"
            local.set_faults(Faults(rate_429=1.0))  # faults switched on from outside
            assert remote.get(JOBS).status_code == 429
            local.set_faults(Faults())
            assert remote.get(JOBS).status_code == 200
            seen = [(entry.method, entry.status) for entry in local.request_log()]
            assert seen == [("POST", 200), ("GET", 200), ("GET", 200), ("GET", 429), ("GET", 200)]
    finally:
        local.close()
