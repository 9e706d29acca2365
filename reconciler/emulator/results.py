"""Result files: computed from a finished job's requests, written lazily and idempotently.

A job's output and error file ids are reserved when it is created, and their rows in the
files table become visible when the job ends. The bytes are only written when someone needs
them (get, list, download). Several threads or processes may try at once: each writes its
own temporary file, and the first to commit wins; the content is deterministic, so every
candidate is byte-identical anyway.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from reconciler.api import Status
from reconciler.emulator import outcomes, synth
from reconciler.emulator.lifecycle import Timeline
from reconciler.emulator.store import Store
from reconciler.emulator.validation import ParsedLine, bounded_lines, parse_lines

Kind = Literal["output", "error"]
AGENT_MODEL = "mistral-medium-latest"  # what an agent job's responses name as their model


def timeline_of(job: sqlite3.Row) -> Timeline:
    return Timeline(
        created_at=job["created_at"],
        start_at=job["start_at"],
        run_end_at=job["run_end_at"],
        end_at=job["end_at"],
        final_status=Status(job["final_status"]),
        total=job["total"],
        bad=job["bad"],
        cancel_at=job["cancel_at"],
    )


def _source_lines(store: Store, names: list[str]) -> Iterator[bytes]:
    for name in names:
        with (store.blob_dir / name).open("rb") as stream:
            yield from bounded_lines(stream)


def requests_of(store: Store, job: sqlite3.Row) -> Iterator[ParsedLine]:
    """The job's requests in order: inline ones from the database, those of input files from
    the job's pinned copies (the files themselves may have been deleted since)."""
    sources: list[str] = json.loads(job["sources"])
    if sources:
        return parse_lines(_source_lines(store, sources), job["endpoint"])
    with store.read() as conn:
        row = conn.execute(
            "SELECT body FROM job_requests WHERE job_seq = ?", (job["seq"],)
        ).fetchone()
    lines = bytes(row["body"]).splitlines(keepends=True) if row is not None else []
    return parse_lines(lines, job["endpoint"])


def _failures_of(store: Store, job: sqlite3.Row) -> dict[int, int]:
    """The job's requests failed by fault injection: index -> status (429, 500 or 400)."""
    with store.read() as conn:
        rows = conn.execute(
            "SELECT idx, status FROM job_failures WHERE job_seq = ?", (job["seq"],)
        ).fetchall()
    return {row["idx"]: row["status"] for row in rows}


def result_lines(store: Store, job: sqlite3.Row, kind: Kind) -> Iterator[dict[str, Any]]:
    """Lines of the job's output or error file, as of its end.

    A request fails when its body is malformed (400) or fault injection failed it (429, 500
    or 400, decided at create). The first ``succeeded`` other requests are in the output
    file and the first ``failed`` failing ones in the error file; when a job ran to
    completion that is all of them; after a cancel or a timeout the counts say how far it
    got, and the requests beyond have no line at all (as with the real API).
    """
    final = timeline_of(job).final_counts()
    ok_left, bad_left = final.succeeded, final.failed
    model = job["model"] or AGENT_MODEL
    created = int(job["start_at"])
    failures = _failures_of(store, job) if final.failed else {}
    for line in requests_of(store, job):
        if ok_left == 0 and bad_left == 0:
            break
        key = f"{job['id']}:{line.index}"
        custom_id = line.custom_id if line.custom_id is not None else str(line.index)
        injected = failures.get(line.index)
        if line.problem is None and injected is None:
            if ok_left == 0:
                continue
            ok_left -= 1
            if kind == "output":
                body = synth.respond(
                    job["endpoint"], line.body, model=model, key=key, created=created
                )
                yield synth.result_line(
                    job_id=job["id"],
                    index=line.index,
                    custom_id=custom_id,
                    status_code=200,
                    body=body,
                )
        else:
            if bad_left == 0:
                continue
            bad_left -= 1
            if kind == "error":
                if line.problem is not None:
                    status, failure = 400, synth.error_body(line.problem)
                else:
                    assert injected is not None
                    status, failure = injected, outcomes.failure_body(injected)
                yield synth.result_line(
                    job_id=job["id"],
                    index=line.index,
                    custom_id=custom_id,
                    status_code=status,
                    body=failure,
                )


def materialize(store: Store, file_id: str) -> sqlite3.Row | None:
    """Make sure a result file's bytes exist; returns its up-to-date row (None if deleted)."""
    with store.read() as conn:
        row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        if row is None or row["blob"] is not None:
            return row  # type: ignore[no-any-return]
        job = conn.execute("SELECT * FROM jobs WHERE seq = ?", (row["job_seq"],)).fetchone()
    tmp = store.tmp_dir / f"{uuid.uuid4().hex}.result"
    size = lines = 0
    digest = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for item in result_lines(store, job, row["kind"]):
                data = (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
                out.write(data)
                digest.update(data)
                size += len(data)
                lines += 1
        with store.write() as conn:
            current = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
            if current is not None and current["blob"] is None:
                tmp.replace(store.blob_dir / file_id)
                conn.execute(
                    "UPDATE files SET blob = ?, bytes = ?, num_lines = ?, signature = ?"
                    " WHERE id = ?",
                    (file_id, size, lines, digest.hexdigest()[:16], file_id),
                )
                current = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
            return current  # type: ignore[no-any-return]
    finally:
        tmp.unlink(missing_ok=True)
