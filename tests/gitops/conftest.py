"""Fixtures for the CI recipes: the repository as CI checks it out (with a served emulator,
or offline), and a fake forge."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitops.fake_forge import FakeForge
from gitops.support import CiRepo, make_repo


@pytest.fixture
def ci_repo(tmp_path: Path, served_emulator: str) -> CiRepo:
    """The repository, its CI job talking to a served emulator (``--server`` from outside)."""
    return make_repo(tmp_path / "repo", MISTRAL_SERVER_URL=served_emulator)


@pytest.fixture
def offline_repo(tmp_path: Path) -> CiRepo:
    """The repository with no server for the job: for what fails before any request."""
    return make_repo(tmp_path / "repo")


@pytest.fixture
def fake_forge() -> Iterator[FakeForge]:
    forge = FakeForge()
    yield forge
    forge.close()
