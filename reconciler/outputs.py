"""Download a finished job's results and errors as one JSONL stream ordered by custom_id.

Result files can be large and their line order is not guaranteed, so the lines are sorted
through a temporary on-disk SQLite table: memory stays flat whatever the result size.
Numeric custom ids sort as numbers ("2" before "10"), others as text after them.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from reconciler.client import MistralClient
from reconciler.errors import ReconcilerError
from reconciler.live import LiveJob
from reconciler.render.safe import terminal


def _sort_key(custom_id: object) -> tuple[int, int, str]:
    if isinstance(custom_id, str) and custom_id.isdigit() and len(custom_id) < 19:
        return (0, int(custom_id), custom_id)
    if custom_id is None:
        return (2, 0, "")
    return (1, 0, str(custom_id))


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.strip()
            if line:
                yield line


def merged_results(
    client: MistralClient, job: LiveJob, out: IO[bytes], *, for_terminal: bool = False
) -> tuple[int, int]:
    """Write ``job``'s output and error lines to ``out``; returns (results, errors).

    ``for_terminal``: ``out`` is a terminal, so each line is shown with its control
    characters escaped (the lines are the API's data, written by anyone); otherwise the
    bytes are written exactly as downloaded."""
    name, job_id = terminal(job.name), terminal(job.id)
    if not job.is_terminal:
        raise ReconcilerError(
            f"{name}: job {job_id} is {job.status}; results are available once it has "
            "finished (see `reconciler wait`)"
        )
    if job.output_file is None and job.error_file is None:
        raise ReconcilerError(f"{name}: job {job_id} ({job.status}) produced no result files")
    counts = {"output": 0, "error": 0}
    with tempfile.TemporaryDirectory(prefix="reconciler-outputs-") as tmp:
        db = sqlite3.connect(Path(tmp) / "sort.sqlite3")
        try:
            db.execute(
                "CREATE TABLE line (kind INTEGER, num INTEGER, text TEXT, seq INTEGER, body BLOB)"
            )
            seq = 0
            for kind, file_id in (("output", job.output_file), ("error", job.error_file)):
                if file_id is None:
                    continue
                path = Path(tmp) / kind
                with path.open("wb") as fh:
                    client.download_file(file_id, fh)
                for line in _lines(path):
                    try:
                        custom_id = json.loads(line).get("custom_id")
                    except (ValueError, AttributeError):
                        custom_id = None
                    seq += 1
                    counts[kind] += 1
                    db.execute(
                        "INSERT INTO line VALUES (?, ?, ?, ?, ?)",
                        (*_sort_key(custom_id), seq, line),
                    )
            for (body,) in db.execute("SELECT body FROM line ORDER BY kind, num, text, seq"):
                line = bytes(body)
                if for_terminal:
                    line = terminal(line.decode("utf-8", "replace")).encode("utf-8")
                out.write(line + b"\n")
        finally:
            db.close()
    return counts["output"], counts["error"]
