"""Fixtures of the end-to-end tests: served emulators and the harness around them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from e2e.harness import E2E

SLOW = 0.01  # jobs stay QUEUED for ~100 s: a test raises the speed where it needs to


@pytest.fixture
def make_e2e(tmp_path: Path) -> Iterator[Callable[..., E2E]]:
    """``make_e2e("--speed", "5")``: a served emulator of the test's own, with these flags."""
    made: list[E2E] = []

    def make(*flags: str) -> E2E:
        harness = E2E.start(tmp_path, *flags)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def e2e(make_e2e: Callable[..., E2E]) -> E2E:
    """A served emulator of the test's own, whose jobs stay QUEUED unless sped up."""
    return make_e2e("--speed", str(SLOW))


@pytest.fixture(scope="module")
def _module_e2e(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2E]:
    harness = E2E.start(tmp_path_factory.mktemp("e2e"), "--speed", str(SLOW))
    yield harness
    harness.close()


@pytest.fixture
def shared_e2e(_module_e2e: E2E, tmp_path: Path) -> E2E:
    """One served emulator for the whole module (a server start costs a second), reset
    before each test: no faults, slow speed, empty request log. Tests keep apart by using
    roots of their own, hence workspaces of their own."""
    harness = _module_e2e
    harness.admin.faults()
    harness.admin.speed(SLOW)
    harness.admin.clear_log()
    harness.tmp = tmp_path
    harness.cli.workdir = tmp_path
    return harness
