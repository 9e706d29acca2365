"""Uploads of generated requests (``prompts:``): generated into an exclusive file under
``.reconciler/cache/``, uploaded once by digest, removed; refused when the rows changed or
the cache folder is a symlink."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.apply.uploads import Uploader, upload_name
from reconciler.client import MistralClient, RetryPolicy
from reconciler.config.loader import load
from reconciler.config.model import JobSpec
from reconciler.config.prompts import RowsChanged, iter_request_lines
from reconciler.emulator import LOCAL_BASE_URL, Emulator, InProcessTransport
from reconciler.errors import ReconcilerError

JOBS = """\
jobs:
  p-${{ matrix.model }}:
    matrix: {model: [mistral-small-latest, mistral-medium-latest]}
    model: ${{ matrix.model }}
    prompts:
      rows: ../data/rows.jsonl
      custom_id: ${{ row.id }}
      body: {messages: [{role: user, content: "${{ row.q }}"}]}
"""


@pytest.fixture
def client(emulator: Emulator) -> Iterator[MistralClient]:
    with MistralClient(
        LOCAL_BASE_URL,
        "uploads-token",
        transport=InProcessTransport(emulator),
        retry=RetryPolicy(max_attempts=2, base_delay=0.0),
        sleep=lambda seconds: None,
    ) as made:
        yield made


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "jobs").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "reconciler.yaml").write_text(
        "version: 1\nworkspace: w\ndefaults: {endpoint: /v1/chat/completions}\n"
    )
    (root / "jobs" / "p.yaml").write_text(JOBS)
    rows = [{"id": f"r{i}", "q": f"question {i}"} for i in range(5)]
    (root / "data" / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def specs(root: Path) -> list[JobSpec]:
    return list(load(root).jobs)


def test_generated_requests_are_uploaded_once_by_digest_and_the_file_removed(
    root: Path, client: MistralClient
) -> None:
    first, second = specs(root)
    assert first.prompts is not None and second.prompts is not None
    expected = b"".join(iter_request_lines(root, first.prompts))
    uploader = Uploader(client, root)
    ids = {uploader.ensure_prompts(first.prompts), uploader.ensure_prompts(second.prompts)}
    assert len(ids) == 1  # two models, the same requests: one generation, one upload
    (file_id,) = ids
    digest = hashlib.sha256(expected).hexdigest()
    assert uploader.uploaded == [digest]
    assert client.get_file(file_id)["filename"] == upload_name(digest)
    assert list((root / ".reconciler" / "cache").iterdir()) == []
    # A later apply (a new uploader) finds the file by its digest and sends nothing.
    again = Uploader(client, root)
    assert again.ensure_prompts(first.prompts) == file_id
    assert (again.uploaded, again.reused) == ([], [digest])


def test_rows_changed_since_the_plan_upload_nothing(root: Path, client: MistralClient) -> None:
    first, _ = specs(root)
    assert first.prompts is not None
    (root / "data" / "rows.jsonl").write_text('{"id": "x", "q": "other"}\n')
    uploader = Uploader(client, root)
    with pytest.raises(RowsChanged, match="changed since the plan was made"):
        uploader.ensure_prompts(first.prompts)
    assert uploader.uploaded == []
    assert list((root / ".reconciler" / "cache").iterdir()) == []
    assert not any(client.iter_file_pages(purpose="batch"))  # no page holds a file


def test_a_symlinked_cache_folder_is_refused(
    root: Path, client: MistralClient, tmp_path: Path
) -> None:
    first, _ = specs(root)
    assert first.prompts is not None
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / ".reconciler").mkdir()
    (root / ".reconciler" / "cache").symlink_to(outside)
    with pytest.raises(ReconcilerError, match="must be a folder, not a symlink"):
        Uploader(client, root).ensure_prompts(first.prompts)
    assert list(outside.iterdir()) == []
