"""SQLite persistence shared by every thread and process that opens the same database.

WAL mode lets readers run beside one writer; every write transaction starts with
``BEGIN IMMEDIATE`` so two writers queue on the busy timeout instead of failing halfway
(a deferred transaction that upgrades to a write can fail with SQLITE_BUSY at any point).
A connection is used by one thread at a time: threads check one out of a small pool
(Werkzeug's server starts a thread per request, so one connection per thread would open
and leak a connection per request). Writers of one process also queue on a lock before
``BEGIN IMMEDIATE``: SQLite's busy handler waits by sleeping (up to 100 ms a time), which
would make concurrent requests of one process slower than serial ones; the busy timeout
is left to arbitrate between processes.

Blobs (uploaded files, pinned request data, result files) live in ``<db>.files/`` and are
written to ``tmp/`` first, then renamed into place, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.emulator.faults import Faults

SCHEMA_VERSION = 2  # 2: request_attempts, job_failures, jobs_pending (added tables only)
BUSY_TIMEOUT_SECONDS = 60.0
_MAX_IDLE_CONNECTIONS = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL                         -- JSON
);
CREATE TABLE IF NOT EXISTS jobs (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order: the tie-breaker
  id            TEXT NOT NULL UNIQUE,
  owner         TEXT NOT NULL,                -- sha256 of the bearer token
  endpoint      TEXT NOT NULL,
  model         TEXT,
  agent_id      TEXT,
  metadata      TEXT,                         -- JSON object as sent, or NULL
  input_files   TEXT NOT NULL,                -- JSON list of file ids as sent
  sources       TEXT NOT NULL,                -- JSON list of pinned input blobs, in order
  timeout_hours INTEGER NOT NULL,
  total         INTEGER NOT NULL,
  bad           INTEGER NOT NULL,             -- malformed bodies: they fail
  created_at    REAL NOT NULL,                -- precise; responses show whole seconds
  start_at      REAL NOT NULL,
  run_end_at    REAL NOT NULL,
  end_at        REAL NOT NULL,
  final_status  TEXT NOT NULL,
  cancel_at     REAL,
  output_file   TEXT NOT NULL,                -- result file ids, reserved at create time
  error_file    TEXT NOT NULL,
  deleted       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at, seq) WHERE deleted = 0;
-- Jobs that may still be QUEUED or RUNNING: the pending-requests limit sums their totals.
CREATE INDEX IF NOT EXISTS jobs_pending ON jobs (end_at) WHERE deleted = 0 AND cancel_at IS NULL;
-- How often this database has run each request (custom_id + body digest): its attempts.
CREATE TABLE IF NOT EXISTS request_attempts (
  key   BLOB PRIMARY KEY,
  count INTEGER NOT NULL
) WITHOUT ROWID;
-- Requests of a job failed by fault injection (--fail-requests...): index and status.
CREATE TABLE IF NOT EXISTS job_failures (
  job_seq INTEGER NOT NULL,
  idx     INTEGER NOT NULL,
  status  INTEGER NOT NULL,
  PRIMARY KEY (job_seq, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS job_requests (       -- a job's inline requests, as JSONL
  job_seq INTEGER PRIMARY KEY,
  body    BLOB NOT NULL
);
-- One row per metadata pair of a live job, ordered like the listing, so that filtering by
-- a tag (reconciler.workspace) walks an index range in order: no sort, no table scan.
CREATE TABLE IF NOT EXISTS job_meta (
  key        TEXT NOT NULL,
  value      TEXT NOT NULL,
  created_at REAL NOT NULL,
  job_seq    INTEGER NOT NULL,
  PRIMARY KEY (key, value, created_at, job_seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS job_meta_by_job ON job_meta (job_seq, key);
CREATE TABLE IF NOT EXISTS files (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  id          TEXT NOT NULL UNIQUE,
  owner       TEXT NOT NULL,
  filename    TEXT NOT NULL,
  purpose     TEXT NOT NULL,
  sample_type TEXT NOT NULL,
  source      TEXT NOT NULL,
  mimetype    TEXT,
  visibility  TEXT NOT NULL,
  bytes       INTEGER,                        -- NULL until a result file is materialized
  num_lines   INTEGER,
  signature   TEXT,
  created_at  REAL NOT NULL,                  -- a result file appears when its job ends
  expires_at  INTEGER,
  blob        TEXT,                           -- name in the blob folder; NULL until written
  job_seq     INTEGER,                        -- result files: their job ...
  kind        TEXT                            -- ... and 'output' or 'error'
);
CREATE INDEX IF NOT EXISTS files_by_created ON files (created_at, seq);
CREATE INDEX IF NOT EXISTS files_by_job ON files (job_seq);
CREATE TABLE IF NOT EXISTS request_log (
  seq     INTEGER PRIMARY KEY AUTOINCREMENT,
  time    REAL NOT NULL,
  method  TEXT NOT NULL,
  path    TEXT NOT NULL,
  query   TEXT NOT NULL,
  status  INTEGER NOT NULL,
  dropped INTEGER NOT NULL DEFAULT 0
);
"""


def _close_all(connections: list[sqlite3.Connection]) -> None:
    while connections:
        connections.pop().close()


def _statements(script: str) -> Iterator[str]:
    """Split a script into statements (semicolons inside comments are not boundaries)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement: {pending!r}")


@dataclass(frozen=True)
class LoggedRequest:
    """One API request as the emulator saw it (admin requests are not logged)."""

    method: str
    path: str
    query: str  # the raw query string, as sent
    status: int  # what the emulator answered (for a dropped response: what it would have)
    time: float  # emulated time
    dropped: bool = False  # committed, then the response was dropped (fault injection)


@dataclass(frozen=True)
class Settings:
    """Emulator settings, persisted so that every process sharing the database agrees."""

    speed: float = 1.0
    hour_length: float = 3600.0  # seconds in one of timeout_hours' hours
    clock_offset: float = 0.0  # added to the clock (Emulator.advance)
    faults: Faults = field(default_factory=Faults)
    api_keys: frozenset[str] | None = None  # sha256 of the accepted tokens; None = any token
    seed: int | None = None

    @classmethod
    def from_rows(cls, rows: dict[str, Any]) -> Settings:
        keys = rows.get("api_keys")
        return cls(
            speed=float(rows.get("speed", 1.0)),
            hour_length=float(rows.get("hour_length", 3600.0)),
            clock_offset=float(rows.get("clock_offset", 0.0)),
            faults=Faults.from_json(rows.get("faults", {})),
            api_keys=frozenset(keys) if keys is not None else None,
            seed=rows.get("seed"),
        )


class Store:
    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self.blob_dir = self.db_path.with_name(self.db_path.name + ".files")
        self.tmp_dir = self.blob_dir / "tmp"
        self.requests_dir = self.blob_dir / "requests"
        for folder in (self.db_path.parent, self.blob_dir, self.tmp_dir, self.requests_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._batch = threading.local()  # .conn: the open transaction of Store.batch
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        self._init_schema()
        # An emulator nobody closed still closes its connections when it is collected.
        weakref.finalize(self, _close_all, self._idle)

    # --- connections -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.db_path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=False,  # pooled: one thread at a time, not always the same
        )
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints; safe with WAL
        return conn

    def _init_schema(self) -> None:
        conn = self._open()
        try:
            # Switching to WAL needs a moment alone with the file; another process may be
            # initialising the same database right now.
            for attempt in range(50):
                try:
                    conn.execute("PRAGMA journal_mode = WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.05)
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise RuntimeError(
                        f"{self.db_path} was written by a newer emulator (schema {version})"
                    )
                for statement in _statements(_SCHEMA):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise RuntimeError("the emulator's store is closed")
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._open()
        try:
            yield conn
        finally:
            with self._lock:
                if not self._closed and len(self._idle) < _MAX_IDLE_CONNECTIONS:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: takes the write lock up front (BEGIN IMMEDIATE).

        Inside :meth:`batch` on the same thread, it is part of the batch's transaction."""
        held: sqlite3.Connection | None = getattr(self._batch, "conn", None)
        if held is not None:
            yield held
            return
        with self._write_lock, self._connection() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction around every :meth:`write` of this thread in the block: all or
        nothing, and one commit instead of one per write (bulk seeding)."""
        with self.write() as conn:
            self._batch.conn = conn
            try:
                yield
            finally:
                self._batch.conn = None

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot (a count and its page agree)."""
        with self._connection() as conn:
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = list(self._idle)
            self._idle.clear()  # the same list the finalizer holds
        for conn in idle:
            conn.close()

    # --- settings ----------------------------------------------------------------------

    def settings(self) -> Settings:
        with self._connection() as conn:
            rows = conn.execute("SELECT key, value FROM settings").fetchall()
        return Settings.from_rows({row["key"]: json.loads(row["value"]) for row in rows})

    def put_settings(self, **values: Any) -> None:
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [(key, json.dumps(value)) for key, value in values.items()],
            )

    def setting(self, key: str) -> Any:
        """One raw setting (None when unset), for keys that Settings does not model."""
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return json.loads(row["value"]) if row else None

    def put_settings_if_absent(self, **values: Any) -> None:
        """Set keys that are unset; a concurrent first writer wins (so all agree)."""
        with self.write() as conn:
            conn.executemany(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                [(key, json.dumps(value)) for key, value in values.items()],
            )

    def add_clock_offset(self, seconds: float) -> float:
        """Atomically move the emulated clock forward; returns the new offset."""
        with self.write() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = 'clock_offset'").fetchone()
            offset = (json.loads(row["value"]) if row else 0.0) + seconds
            conn.execute(
                "INSERT INTO settings (key, value) VALUES ('clock_offset', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (json.dumps(offset),),
            )
        return float(offset)

    # --- request log -------------------------------------------------------------------

    def log(self, entry: LoggedRequest) -> None:
        with self.write() as conn:
            conn.execute(
                "INSERT INTO request_log (time, method, path, query, status, dropped)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    entry.time,
                    entry.method,
                    entry.path,
                    entry.query,
                    entry.status,
                    int(entry.dropped),
                ),
            )

    def request_log(self) -> list[LoggedRequest]:
        with self.read() as conn:
            rows = conn.execute(
                "SELECT time, method, path, query, status, dropped FROM request_log ORDER BY seq"
            ).fetchall()
        return [
            LoggedRequest(
                method=row["method"],
                path=row["path"],
                query=row["query"],
                status=row["status"],
                time=row["time"],
                dropped=bool(row["dropped"]),
            )
            for row in rows
        ]

    def clear_request_log(self) -> int:
        with self.write() as conn:
            return conn.execute("DELETE FROM request_log").rowcount
