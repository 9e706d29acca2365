"""The Files API: uploads streamed to disk, listing, metadata, download and delete."""

from __future__ import annotations

import hashlib
import mimetypes
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import RequestEntityTooLarge

from reconciler.api import FILE_PURPOSES, FILE_SOURCES, MAX_FILE_BYTES, SAMPLE_TYPES
from reconciler.emulator import errors, results
from reconciler.emulator.store import Store
from reconciler.emulator.validation import (
    Detail,
    missing,
    query_bool,
    query_enum,
    query_int,
    uuid_problem,
)

VISIBILITIES = ("workspace", "user")
MAX_PAGE_SIZE = 1000
MAX_PAGE = 1_000_000  # no documented maximum; beyond it offsets overflow, so: 422
MAX_UPLOAD_EXPIRY_HOURS = 24 * 365 * 10  # no documented maximum: ten years

# A row is visible when it exists for the caller now: result files appear when their job
# ends (created_at), expired files vanish, "user" files are their uploader's alone.
VISIBLE_SQL = (
    "created_at <= :now AND (expires_at IS NULL OR expires_at > :now)"
    " AND (visibility = 'workspace' OR owner = :owner)"
)


@dataclass(frozen=True)
class Caller:
    """Who is asking, and when (emulated time)."""

    owner: str  # sha256 of the bearer token: one token, one user
    now: float


class UploadSink:
    """Where Werkzeug's multipart parser writes one file part: straight to a file on disk.

    Hashing, counting bytes and lines happen as the chunks go by, so a 512 MB upload is
    never held in memory nor read twice.
    """

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.size = 0
        self.newlines = 0
        self.last_byte = b""
        self.sha256 = hashlib.sha256()
        self._file = path.open("w+b")

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise RequestEntityTooLarge(f"files are limited to {self.limit} bytes")
        if data:
            self.sha256.update(data)
            self.newlines += data.count(b"\n")
            self.last_byte = data[-1:]
        return self._file.write(data)

    @property
    def lines(self) -> int:
        """Lines, counting a last line without its newline."""
        tail = 1 if self.size and self.last_byte != b"\n" else 0
        return self.newlines + tail

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readline(self, size: int = -1) -> bytes:
        return self._file.readline(size)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    @property
    def closed(self) -> bool:
        return self._file.closed

    def as_io(self) -> IO[bytes]:
        return cast("IO[bytes]", self)


def _guess_mimetype(filename: str, declared: str | None) -> str | None:
    if filename.endswith(".jsonl"):
        return "application/jsonl"
    guessed, _ = mimetypes.guess_type(filename)
    if guessed:
        return guessed
    if declared and declared != "application/octet-stream":
        return declared
    return None


def file_out(row: sqlite3.Row, *, with_deleted: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": int(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "sample_type": row["sample_type"],
        "source": row["source"],
        "num_lines": row["num_lines"],
        "mimetype": row["mimetype"],
        "signature": row["signature"],
        "expires_at": row["expires_at"],
        "visibility": row["visibility"],
    }
    if with_deleted:
        out["deleted"] = False
    return out


class Files:
    max_file_bytes = MAX_FILE_BYTES  # class attribute, so a test can lower it

    def __init__(self, store: Store) -> None:
        self._store = store

    def new_sink(self) -> UploadSink:
        return UploadSink(self._store.tmp_dir / f"{uuid.uuid4().hex}.upload", self.max_file_bytes)

    # --- lookups -----------------------------------------------------------------------

    def visible_row(
        self, caller: Caller, file_id: str, *, materialize: bool = True
    ) -> sqlite3.Row | None:
        """The file as the caller sees it now (None: not found), its bytes written if asked."""
        if uuid_problem(("path", "file_id"), file_id) is not None:
            return None
        with self._store.read() as conn:
            row = conn.execute(
                f"SELECT * FROM files WHERE id = :id AND {VISIBLE_SQL}",
                {"id": file_id, "now": caller.now, "owner": caller.owner},
            ).fetchone()
        if materialize and row is not None and row["blob"] is None:
            return results.materialize(self._store, file_id)
        return row  # type: ignore[no-any-return]

    def blob_path(self, row: sqlite3.Row) -> Path:
        return self._store.blob_dir / str(row["blob"])

    def _require(self, caller: Caller, file_id: str, *, materialize: bool = True) -> sqlite3.Row:
        problem = uuid_problem(("path", "file_id"), file_id)
        if problem is not None:
            raise errors.validation_failed([problem])
        row = self.visible_row(caller, file_id, materialize=materialize)
        if row is None:
            raise errors.not_found("File", file_id)
        return row

    # --- operations --------------------------------------------------------------------

    def upload(
        self,
        caller: Caller,
        form: MultiDict[str, str],
        sink: UploadSink | None,
        filename: str | None,
        declared_type: str | None,
    ) -> dict[str, Any]:
        problems: list[Detail] = []
        if sink is None:
            problems.append(missing(("body", "file"), None))
        purpose = form.get("purpose", "fine-tune")
        problem = query_enum("purpose", purpose, FILE_PURPOSES)
        if problem:
            problems.append({**problem, "loc": ["body", "purpose"]})
        visibility = form.get("visibility", "workspace")
        problem = query_enum("visibility", visibility, VISIBILITIES)
        if problem:
            problems.append({**problem, "loc": ["body", "visibility"]})
        expires_at: int | None = None
        expiry = form.get("expiry", "").strip()
        if expiry and expiry.lower() != "null":
            hours, problem = query_int("expiry", expiry, 1, MAX_UPLOAD_EXPIRY_HOURS)
            if problem:
                problems.append({**problem, "loc": ["body", "expiry"]})
            elif hours is not None:
                expires_at = int(caller.now + hours * 3600)
        if problems or sink is None:
            raise errors.validation_failed(problems)
        name = filename or "upload"
        mimetype = _guess_mimetype(name, declared_type)
        textual = mimetype == "application/jsonl" or purpose in ("batch", "fine-tune")
        file_id = str(uuid.uuid4())
        sink.close()
        sink.path.replace(self._store.blob_dir / file_id)
        try:
            with self._store.write() as conn:
                conn.execute(
                    "INSERT INTO files (id, owner, filename, purpose, sample_type, source,"
                    " mimetype, visibility, bytes, num_lines, signature, created_at, expires_at,"
                    " blob) VALUES (?, ?, ?, ?, ?, 'upload', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        file_id,
                        caller.owner,
                        name,
                        purpose,
                        "batch_request" if purpose == "batch" else "instruct",
                        mimetype,
                        visibility,
                        sink.size,
                        sink.lines if textual else None,
                        sink.sha256.hexdigest()[:16],
                        caller.now,
                        expires_at,
                        file_id,
                    ),
                )
                row = conn.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        except BaseException:
            (self._store.blob_dir / file_id).unlink(missing_ok=True)
            raise
        return file_out(row)

    def list(self, caller: Caller, args: MultiDict[str, str]) -> dict[str, Any]:
        problems: list[Detail] = []
        page, problem = query_int("page", args.get("page", "0"), 0, MAX_PAGE)
        problems += [problem] if problem else []
        page_size, problem = query_int("page_size", args.get("page_size", "100"), 1, MAX_PAGE_SIZE)
        problems += [problem] if problem else []
        include_total, problem = query_bool("include_total", args.get("include_total", "true"))
        problems += [problem] if problem else []
        conditions = [VISIBLE_SQL]
        params: dict[str, Any] = {"now": caller.now, "owner": caller.owner}
        purpose = args.get("purpose")
        if purpose is not None:
            problem = query_enum("purpose", purpose, FILE_PURPOSES)
            problems += [problem] if problem else []
            conditions.append("purpose = :purpose")
            params["purpose"] = purpose
        search = args.get("search")
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions.append("filename LIKE :search ESCAPE '\\'")
            params["search"] = f"%{escaped}%"
        for name, allowed in (
            ("sample_type", SAMPLE_TYPES),
            ("source", FILE_SOURCES),
            ("mimetypes", None),
        ):
            values = args.getlist(name)
            if not values:
                continue
            column = "mimetype" if name == "mimetypes" else name
            marks = []
            for index, value in enumerate(values):
                if allowed is not None:
                    problem = query_enum(name, value, allowed)
                    problems += [{**problem, "loc": ["query", name, index]}] if problem else []
                params[f"{name}{index}"] = value
                marks.append(f":{name}{index}")
            conditions.append(f"{column} IN ({', '.join(marks)})")
        if problems:
            raise errors.validation_failed(problems)
        assert page is not None and page_size is not None
        where = " AND ".join(conditions)
        with self._store.read() as conn:
            rows = conn.execute(
                f"SELECT * FROM files WHERE {where}"
                " ORDER BY created_at DESC, seq DESC LIMIT :limit OFFSET :offset",
                {**params, "limit": page_size, "offset": page * page_size},
            ).fetchall()
            total = (
                conn.execute(f"SELECT COUNT(*) FROM files WHERE {where}", params).fetchone()[0]
                if include_total
                else None
            )
        data = []
        for row in rows:
            current = row
            if current["blob"] is None:  # a result file seen for the first time
                current = results.materialize(self._store, row["id"])
                if current is None:
                    continue
            data.append(file_out(current))
        return {"object": "list", "data": data, "total": total}

    def get(self, caller: Caller, file_id: str) -> dict[str, Any]:
        return file_out(self._require(caller, file_id), with_deleted=True)

    def content(self, caller: Caller, file_id: str) -> tuple[IO[bytes], int, str]:
        """An open stream of the file's bytes, their size and the file's name."""
        row = self._require(caller, file_id)
        try:
            stream = self.blob_path(row).open("rb")
        except FileNotFoundError:  # deleted between the lookup and now
            raise errors.not_found("File", file_id) from None
        return stream, int(row["bytes"]), row["filename"]

    def delete(self, caller: Caller, file_id: str) -> dict[str, Any]:
        row = self._require(caller, file_id, materialize=False)
        with self._store.write() as conn:
            gone = conn.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount
        if not gone:  # deleted by someone else meanwhile
            raise errors.not_found("File", file_id)
        if row["blob"] is not None:
            # Jobs that used this file keep their own hard link (or copy) of the bytes.
            (self._store.blob_dir / row["blob"]).unlink(missing_ok=True)
        return {"id": file_id, "object": "file", "deleted": True}
