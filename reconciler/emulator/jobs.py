"""The Batch Jobs API: create (validated, streaming over input files), list, get, cancel,
delete. Job state is never stored as such: it is computed from the job's timeline and now.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from werkzeug.datastructures import MultiDict

from reconciler.api import Status
from reconciler.emulator import catalogue, errors, outcomes, results
from reconciler.emulator.faults import Faults
from reconciler.emulator.files import MAX_PAGE, MAX_PAGE_SIZE, Caller, Files
from reconciler.emulator.lifecycle import STATUS_SQL, Counts, Timeline
from reconciler.emulator.store import Settings, Store
from reconciler.emulator.synth import problem as body_problem
from reconciler.emulator.validation import (
    CreateRequest,
    Detail,
    InvalidJsonl,
    bounded_lines,
    check_create,
    detail,
    loads,
    parse_json_body,
    parse_lines,
    query_bool,
    query_datetime,
    query_enum,
    query_int,
    uuid_problem,
    value_error,
)

# Query parameters of the list operation; any other parameter is a metadata filter, which
# is how the official SDK sends ``metadata={...}`` (one parameter per key).
LIST_PARAMETERS = frozenset(
    {
        "page",
        "page_size",
        "model",
        "agent_id",
        "metadata",
        "created_after",
        "created_by_me",
        "status",
        "order_by",
    }
)


def _errors_of(status: Status, timeline: Timeline, counts: Counts, timeout_hours: int) -> list[Any]:
    """Job-level errors; per-request failures are in the error file."""
    if status is Status.FAILED:
        return [{"message": "All requests of the batch failed", "count": counts.failed}]
    if status is Status.TIMEOUT_EXCEEDED:
        left = timeline.total - counts.completed
        return [{"message": f"Job exceeded its timeout of {timeout_hours} hours", "count": left}]
    return []


def job_out(job: sqlite3.Row, now: float, outputs: list[Any] | None = None) -> dict[str, Any]:
    timeline = results.timeline_of(job)
    status = timeline.status(now)
    counts = timeline.counts(now)
    finished = status.is_terminal
    started = timeline.started_at(now)
    completed = timeline.completed_at(now)
    return {
        "id": job["id"],
        "object": "batch",
        "input_files": json.loads(job["input_files"]),
        "metadata": json.loads(job["metadata"]) if job["metadata"] is not None else None,
        "endpoint": job["endpoint"],
        "model": job["model"],
        "agent_id": job["agent_id"],
        "output_file": job["output_file"] if finished and counts.succeeded else None,
        "error_file": job["error_file"] if finished and counts.failed else None,
        "errors": _errors_of(status, timeline, counts, job["timeout_hours"]),
        "outputs": outputs,
        "status": status.value,
        "created_at": int(job["created_at"]),
        "total_requests": timeline.total,
        "completed_requests": counts.completed,
        "succeeded_requests": counts.succeeded,
        "failed_requests": counts.failed,
        "started_at": int(started) if started is not None else None,
        "completed_at": int(completed) if completed is not None else None,
    }


def _link_or_copy(source: Path, target: Path) -> None:
    """Pin a file's bytes for a job: a hard link costs nothing; copy where links fail."""
    try:
        os.link(source, target)
    except OSError as err:
        if isinstance(err, FileNotFoundError):
            raise
        shutil.copyfile(source, target)


class _Batch:
    """A job's requests as the create needs them: 16 bytes of identity per request (for
    attempt counting, outcomes.request_key) and which ones are malformed; compact, so that a
    job of 100,000s of requests costs a few MB."""

    def __init__(self) -> None:
        self.keys = bytearray()
        self.bad = bytearray()
        self.total = 0
        self.malformed = 0

    def add(self, index: int, custom_id: str | None, body: Any, problem: str | None) -> None:
        self.keys += outcomes.request_key(custom_id if custom_id is not None else str(index), body)
        self.bad.append(problem is not None)
        self.malformed += problem is not None
        self.total += 1

    def key(self, index: int) -> bytes:
        return bytes(self.keys[index * outcomes.KEY_BYTES : (index + 1) * outcomes.KEY_BYTES])


_ATTEMPT_CHUNK = 500  # keys per SELECT ... IN (...)


def _count_attempts(
    conn: sqlite3.Connection, batch: _Batch, faults: Faults, seed: int | None
) -> list[tuple[int, int]]:
    """Count one more attempt of every request of the batch; returns the injected failures
    (index, status) that this attempt draws. Memory: one chunk of keys at a time."""
    failures: list[tuple[int, int]] = []
    inject = faults.fail_requests > 0 or faults.fail_requests_permanent > 0
    for start in range(0, batch.total, _ATTEMPT_CHUNK):
        stop = min(batch.total, start + _ATTEMPT_CHUNK)
        keys = [batch.key(index) for index in range(start, stop)]
        distinct = list(dict.fromkeys(keys))
        marks = ", ".join("?" * len(distinct))
        counts = dict.fromkeys(distinct, 0)
        counts.update(
            conn.execute(
                f"SELECT key, count FROM request_attempts WHERE key IN ({marks})", distinct
            ).fetchall()
        )
        for index, key in zip(range(start, stop), keys, strict=True):
            counts[key] += 1
            if inject and not batch.bad[index]:
                status = outcomes.decide(
                    key,
                    counts[key],
                    transient=faults.fail_requests,
                    permanent=faults.fail_requests_permanent,
                    seed=seed,
                )
                if status is not None:
                    failures.append((index, status))
        conn.executemany(
            "INSERT INTO request_attempts (key, count) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET count = excluded.count",
            list(counts.items()),
        )
    return failures


def _check_size(total: int, limit: int, *, more: bool = False) -> None:
    if total > limit:
        counted = f"more than {limit}" if more else str(total)
        raise errors.invalid_request(
            f"Too many requests in one batch job: {counted}; at most {limit} per job"
        )


class Jobs:
    def __init__(self, store: Store, files: Files) -> None:
        self._store = store
        self._files = files

    # --- create ------------------------------------------------------------------------

    def create(self, caller: Caller, settings: Settings, raw: bytes) -> dict[str, Any]:
        body = parse_json_body(raw)
        request, problems = check_create(body)
        if request is None:
            raise errors.validation_failed(problems)
        if request.model is not None:
            refused = catalogue.model_problem(request.model, request.endpoint)
            if refused is not None:
                raise errors.invalid_model(refused)
        job_id = str(uuid.uuid4())
        pinned: list[Path] = []
        inline: bytes | None = None
        limit = settings.faults.max_requests_per_job
        try:
            if request.requests is not None:
                inline, batch = self._encode_inline(request, limit)
            else:
                batch = self._pin_files(caller, job_id, request, pinned, limit)
            row = self._insert(caller, settings, job_id, request, batch, pinned, inline)
        except BaseException:
            for path in pinned:
                path.unlink(missing_ok=True)
            raise
        return job_out(row, caller.now)

    @staticmethod
    def _encode_inline(request: CreateRequest, limit: int) -> tuple[bytes, _Batch]:
        """Inline requests as JSONL, kept in the database (a file per job costs more)."""
        assert request.requests is not None
        _check_size(len(request.requests), limit)
        lines, batch = [], _Batch()
        for index, item in enumerate(request.requests):
            line = {"custom_id": item.get("custom_id"), "body": item["body"]}
            lines.append(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
            batch.add(
                index,
                item.get("custom_id"),
                item["body"],
                body_problem(request.endpoint, item["body"]),
            )
        return "".join(lines).encode("utf-8", "surrogatepass"), batch

    def _pin_files(
        self,
        caller: Caller,
        job_id: str,
        request: CreateRequest,
        pinned: list[Path],
        limit: int,
    ) -> _Batch:
        """Pin each input file, then check it line by line (never whole in memory)."""
        assert request.input_files is not None
        problems: list[Detail] = []
        batch = _Batch()
        for index, file_id in enumerate(request.input_files):
            loc = ("body", "input_files", index)
            row = self._files.visible_row(caller, file_id)
            if row is None:
                problems.append(value_error(loc, f"file {file_id} not found", file_id))
                continue
            if row["purpose"] != "batch":
                problems.append(
                    value_error(
                        loc,
                        f"file {file_id} has purpose {row['purpose']!r}, not 'batch'",
                        file_id,
                    )
                )
                continue
            target = self._store.requests_dir / f"{job_id}.{index}.jsonl"
            try:
                _link_or_copy(self._files.blob_path(row), target)
            except FileNotFoundError:  # deleted while we looked at it
                problems.append(value_error(loc, f"file {file_id} not found", file_id))
                continue
            pinned.append(target)
            try:
                with target.open("rb") as stream:
                    for line in parse_lines(
                        bounded_lines(stream), request.endpoint, start=batch.total
                    ):
                        batch.add(line.index, line.custom_id, line.body, line.problem)
                        if batch.total > limit:  # no need to read further
                            _check_size(batch.total, limit, more=True)
            except InvalidJsonl as err:
                problems.append(
                    value_error(loc, f"file {file_id} is not valid batch JSONL: {err}", file_id)
                )
        total = batch.total
        if not problems and total == 0:
            problems.append(
                value_error(
                    ("body", "input_files"),
                    "the input files contain no requests",
                    request.input_files,
                )
            )
        if problems:
            raise errors.validation_failed(problems)
        return batch

    def _insert(
        self,
        caller: Caller,
        settings: Settings,
        job_id: str,
        request: CreateRequest,
        batch: _Batch,
        pinned: list[Path],
        inline: bytes | None,
    ) -> sqlite3.Row:
        output_file, error_file = str(uuid.uuid4()), str(uuid.uuid4())
        sources = [str(path.relative_to(self._store.blob_dir)) for path in pinned]
        faults = settings.faults
        with self._store.write() as conn:
            # In the create's own transaction, so that two creates cannot both pass.
            pending = conn.execute(
                "SELECT COALESCE(SUM(total), 0) FROM jobs WHERE deleted = 0"
                " AND cancel_at IS NULL AND end_at > :now",
                {"now": caller.now},
            ).fetchone()[0]
            if pending + batch.total > faults.max_pending_requests:
                raise errors.invalid_request(
                    f"Too many pending requests: this job has {batch.total}, the workspace"
                    f" already has {pending} in queued or running jobs, and at most"
                    f" {faults.max_pending_requests} may be pending at once"
                )
            failures = _count_attempts(conn, batch, faults, settings.seed)
            timeline = Timeline.plan(
                now=caller.now,
                total=batch.total,
                bad=batch.malformed + len(failures),
                speed=settings.speed,
                timeout_seconds=request.timeout_hours * settings.hour_length,
            )
            final = timeline.final_counts()
            cursor = conn.execute(
                "INSERT INTO jobs (id, owner, endpoint, model, agent_id, metadata, input_files,"
                " sources, timeout_hours, total, bad, created_at, start_at, run_end_at, end_at,"
                " final_status, output_file, error_file)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    caller.owner,
                    request.endpoint,
                    request.model,
                    request.agent_id,
                    json.dumps(request.metadata) if request.metadata is not None else None,
                    json.dumps(request.input_files or []),
                    json.dumps(sources),
                    request.timeout_hours,
                    timeline.total,
                    timeline.bad,
                    timeline.created_at,
                    timeline.start_at,
                    timeline.run_end_at,
                    timeline.end_at,
                    timeline.final_status.value,
                    output_file,
                    error_file,
                ),
            )
            seq = cursor.lastrowid
            conn.executemany(
                "INSERT INTO job_failures (job_seq, idx, status) VALUES (?, ?, ?)",
                [(seq, index, status) for index, status in failures],
            )
            if inline is not None:
                conn.execute(
                    "INSERT INTO job_requests (job_seq, body) VALUES (?, ?)", (seq, inline)
                )
            conn.executemany(
                "INSERT INTO job_meta (key, value, created_at, job_seq) VALUES (?, ?, ?, ?)",
                [
                    (key, value, timeline.created_at, seq)
                    for key, value in (request.metadata or {}).items()
                ],
            )
            for kind, file_id, count in (
                ("output", output_file, final.succeeded),
                ("error", error_file, final.failed),
            ):
                if count:
                    self._insert_result_file(
                        conn,
                        caller=caller,
                        job_id=job_id,
                        seq=seq,
                        kind=kind,
                        file_id=file_id,
                        timeline=timeline,
                    )
            return conn.execute("SELECT * FROM jobs WHERE seq = ?", (seq,)).fetchone()  # type: ignore[no-any-return]

    @staticmethod
    def _insert_result_file(
        conn: sqlite3.Connection,
        *,
        caller: Caller,
        job_id: str,
        seq: int | None,
        kind: str,
        file_id: str,
        timeline: Timeline,
    ) -> None:
        conn.execute(
            "INSERT INTO files (id, owner, filename, purpose, sample_type, source, mimetype,"
            " visibility, created_at, job_seq, kind)"
            " VALUES (?, ?, ?, 'batch', ?, 'mistral', 'application/jsonl', 'workspace', ?, ?, ?)",
            (
                file_id,
                caller.owner,
                f"batch-{job_id}-{kind}.jsonl",
                "batch_result" if kind == "output" else "batch_error",
                timeline.end_at,
                seq,
                kind,
            ),
        )

    # --- read --------------------------------------------------------------------------

    def _row(self, conn: sqlite3.Connection, job_id: str) -> sqlite3.Row:
        problem = uuid_problem(("path", "job_id"), job_id)
        if problem is not None:
            raise errors.validation_failed([problem])
        row = conn.execute("SELECT * FROM jobs WHERE id = ? AND deleted = 0", (job_id,)).fetchone()
        if row is None:
            raise errors.not_found("Batch job", job_id)
        return row  # type: ignore[no-any-return]

    def get(self, caller: Caller, job_id: str, inline: bool | None) -> dict[str, Any]:
        """``inline``: the query parameter (None when absent). A finished job's results come
        inline when asked, and by default for a job created with inline ``requests``."""
        with self._store.read() as conn:
            row = self._row(conn, job_id)
        outputs = None
        if inline is None:
            inline = not json.loads(row["sources"])  # created inline
        if inline and results.timeline_of(row).status(caller.now).is_terminal:
            outputs = [
                *results.result_lines(self._store, row, "output"),
                *results.result_lines(self._store, row, "error"),
            ]
        return job_out(row, caller.now, outputs)

    def list(self, caller: Caller, args: MultiDict[str, str]) -> dict[str, Any]:
        query = _ListQuery.parse(args, caller)
        with self._store.read() as conn:
            rows, total = query.run(conn)
        return {
            "object": "list",
            "data": [job_out(row, caller.now) for row in rows],
            "total": total,
        }

    # --- write -------------------------------------------------------------------------

    def cancel(self, caller: Caller, settings: Settings, job_id: str) -> dict[str, Any]:
        with self._store.write() as conn:
            row = self._row(conn, job_id)
            timeline = results.timeline_of(row)
            status = timeline.status(caller.now)
            if status.is_terminal:
                raise errors.invalid_request(
                    f"Batch job {job_id} is already finished ({status.value}); it cannot be"
                    " cancelled"
                )
            if status is Status.CANCELLATION_REQUESTED:
                return job_out(row, caller.now)  # cancelling twice changes nothing
            after = timeline.cancelled(caller.now, settings.speed)
            conn.execute(
                "UPDATE jobs SET cancel_at = ?, end_at = ?, final_status = ? WHERE seq = ?",
                (after.cancel_at, after.end_at, after.final_status.value, row["seq"]),
            )
            # The result files now appear when the cancel completes, holding what was done.
            final = after.final_counts()
            conn.execute(
                "UPDATE files SET created_at = ? WHERE job_seq = ?", (after.end_at, row["seq"])
            )
            for kind, count in (("output", final.succeeded), ("error", final.failed)):
                if not count:
                    conn.execute(
                        "DELETE FROM files WHERE job_seq = ? AND kind = ?", (row["seq"], kind)
                    )
            row = conn.execute("SELECT * FROM jobs WHERE seq = ?", (row["seq"],)).fetchone()
        return job_out(row, caller.now)

    def delete(self, caller: Caller, job_id: str) -> dict[str, Any]:
        with self._store.write() as conn:
            row = self._row(conn, job_id)
            status = results.timeline_of(row).status(caller.now)
            if status.is_active:
                raise errors.invalid_request(
                    f"Batch job {job_id} is {status.value}; only finished jobs can be deleted"
                    " (cancel it first and wait for CANCELLED)"
                )
            # Soft delete: the job's result files (kept) may still need its requests.
            conn.execute("UPDATE jobs SET deleted = 1 WHERE seq = ?", (row["seq"],))
            conn.execute("DELETE FROM job_meta WHERE job_seq = ?", (row["seq"],))
        return {"id": job_id, "object": "batch", "deleted": True}


class _ListQuery:
    """A parsed list request, turned into SQL that pages in the database.

    With a metadata filter the query walks the ``job_meta`` index range of that key and value,
    already in listing order; with only that filter, paging and counting never touch the jobs
    table beyond the page itself.
    """

    def __init__(self) -> None:
        self.page = 0
        self.page_size = 100
        self.descending = True
        self.meta: list[tuple[str, str]] = []
        self.conditions: list[str] = []
        self.params: dict[str, Any] = {}

    @classmethod
    def parse(cls, args: MultiDict[str, str], caller: Caller) -> _ListQuery:
        query = cls()
        problems: list[Detail] = []

        def note(problem: Detail | None) -> None:
            if problem is not None:
                problems.append(problem)

        page, problem = query_int("page", args.get("page", "0"), 0, MAX_PAGE)
        note(problem)
        page_size, problem = query_int("page_size", args.get("page_size", "100"), 1, MAX_PAGE_SIZE)
        note(problem)
        query.page, query.page_size = page or 0, page_size or 100
        order = args.get("order_by", "-created")
        note(query_enum("order_by", order, ("created", "-created")))
        query.descending = order != "created"
        query.params["now"] = caller.now
        for name in ("model", "agent_id"):
            value = args.get(name)
            if value is not None:
                query.conditions.append(f"j.{name} = :{name}")
                query.params[name] = value
        by_me, problem = query_bool("created_by_me", args.get("created_by_me", "false"))
        note(problem)
        if by_me:
            query.conditions.append("j.owner = :owner")
            query.params["owner"] = caller.owner
        after = args.get("created_after")
        if after is not None:
            moment, problem = query_datetime("created_after", after)
            note(problem)
            query.conditions.append("j.created_at > :after")
            query.params["after"] = moment
        statuses = args.getlist("status")
        if statuses:
            for index, value in enumerate(statuses):
                problem = query_enum("status", value, [s.value for s in Status])
                note({**problem, "loc": ["query", "status", index]} if problem else None)
                query.params[f"status{index}"] = value
            marks = ", ".join(f":status{index}" for index in range(len(statuses)))
            query.conditions.append(f"{STATUS_SQL} IN ({marks})")
        raw_metadata = args.get("metadata")
        if raw_metadata is not None:
            note(query._parse_metadata_json(raw_metadata))
        for key in args:
            if key not in LIST_PARAMETERS:
                query.meta.extend((key, value) for value in args.getlist(key))
        if problems:
            raise errors.validation_failed(problems)
        return query

    def _parse_metadata_json(self, raw: str) -> Detail | None:
        try:
            value = loads(raw.encode("utf-8", "surrogatepass"))
        except ValueError:
            value = None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            return detail(
                "dict_type",
                ("query", "metadata"),
                "Input should be a JSON object of string values",
                raw,
            )
        self.meta.extend(value.items())
        return None

    def run(self, conn: sqlite3.Connection) -> tuple[list[sqlite3.Row], int]:
        direction = "DESC" if self.descending else "ASC"
        params = {**self.params, "limit": self.page_size, "offset": self.page * self.page_size}
        conditions = ["j.deleted = 0", *self.conditions]
        for index, (key, value) in enumerate(self.meta[1:]):
            params[f"mk{index}"], params[f"mv{index}"] = key, value
            conditions.append(
                f"EXISTS (SELECT 1 FROM job_meta x{index} WHERE x{index}.job_seq = j.seq"
                f" AND x{index}.key = :mk{index} AND x{index}.value = :mv{index})"
            )
        where = " AND ".join(conditions)
        if not self.meta:
            total = conn.execute(f"SELECT COUNT(*) FROM jobs j WHERE {where}", params).fetchone()[0]
            rows = conn.execute(
                f"SELECT j.* FROM jobs j WHERE {where}"
                f" ORDER BY j.created_at {direction}, j.seq {direction}"
                " LIMIT :limit OFFSET :offset",
                params,
            ).fetchall()
            return rows, total
        params["key"], params["value"] = self.meta[0]
        if len(conditions) == 1:
            # Only one tag filter: count and page on the index alone, then fetch the page.
            total = conn.execute(
                "SELECT COUNT(*) FROM job_meta WHERE key = :key AND value = :value", params
            ).fetchone()[0]
            rows = conn.execute(
                "SELECT j.* FROM (SELECT job_seq, created_at FROM job_meta"
                " WHERE key = :key AND value = :value"
                f" ORDER BY created_at {direction}, job_seq {direction}"
                " LIMIT :limit OFFSET :offset) m JOIN jobs j ON j.seq = m.job_seq"
                f" ORDER BY m.created_at {direction}, m.job_seq {direction}",
                params,
            ).fetchall()
            return rows, total
        source = "job_meta m JOIN jobs j ON j.seq = m.job_seq"
        where = f"m.key = :key AND m.value = :value AND {where}"
        total = conn.execute(f"SELECT COUNT(*) FROM {source} WHERE {where}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT j.* FROM {source} WHERE {where}"
            f" ORDER BY m.created_at {direction}, m.job_seq {direction}"
            " LIMIT :limit OFFSET :offset",
            params,
        ).fetchall()
        return rows, total
