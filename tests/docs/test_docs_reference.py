"""The generated references match their sources, and the docs' links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reconciler import docgen

REPO = Path(__file__).resolve().parents[2]
DOC_FILES = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# Linked ahead of the work that writes them (the benchmarks have their own owner).
PENDING = {"benchmarks/README.md"}


@pytest.mark.parametrize("name", sorted(docgen.PAGES))
def test_committed_reference_is_up_to_date(name: str) -> None:
    committed = (REPO / "docs" / "reference" / name).read_text(encoding="utf-8")
    assert committed == docgen.PAGES[name](), (
        f"docs/reference/{name} is out of date: run `python -m reconciler.docgen`"
    )


def test_check_mode_fails_on_a_stale_page_and_rewrites_it(tmp_path: Path) -> None:
    assert docgen.main(["--check", "--out", str(tmp_path)]) == 1  # missing pages
    assert docgen.main(["--out", str(tmp_path)]) == 0
    assert docgen.main(["--check", "--out", str(tmp_path)]) == 0
    page = tmp_path / "configuration.md"
    page.write_text(page.read_text().replace("max_destroy", "max_destroyed"))
    assert docgen.main(["--check", "--out", str(tmp_path)]) == 1


def test_configuration_reference_covers_every_field() -> None:
    page = docgen.configuration_page()
    for field in ("workspace", "server", "include", "defaults", "safety", "max_destroy"):
        assert f"| `{field}` |" in page, field
    for field in ("endpoint", "model", "agent_id", "inputs", "input_files", "requests",
                  "metadata", "timeout_hours", "max_attempts", "on_change",
                  "prevent_destroy", "history_limit", "custom_id", "body"):  # fmt: skip
        assert f"| `{field}` |" in page, field
    assert "| `timeout_hours` | integer | `24` |" in page
    assert "set only one of model and agent_id" in page


def test_cli_reference_has_every_command() -> None:
    page = docgen.cli_page()
    for command in ("validate", "schema", "plan", "apply", "destroy", "status", "wait",
                    "outputs", "show", "completion", "emulator", "emulator serve"):  # fmt: skip
        assert f"\n## reconciler {command}\n" in page, command
        assert f"Usage: reconciler {command}" in page


def anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.DOTALL)
    return {docgen._anchor(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_somewhere(doc: Path) -> None:
    text = re.sub(r"```.*?```", "", doc.read_text(encoding="utf-8"), flags=re.DOTALL)
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        if not file.exists() and path in PENDING:
            continue
        assert file.exists(), f"{doc.name}: {target}"
        if anchor and file.suffix == ".md":
            assert anchor in anchors(file), f"{doc.name}: {target}"
