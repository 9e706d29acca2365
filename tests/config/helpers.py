"""Helpers of the config tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from reconciler.cli import cli


class Workdir:
    """A config root in a temporary folder that is also the working folder, so problems
    name files relative to it (``jobs/a.yaml:3:5: ...``)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, files: dict[str, str | bytes | tuple[str, str]]) -> None:
        """Write ``files`` (path relative to the root -> text, bytes, or
        ``("symlink", target)``)."""
        for rel, content in files.items():
            path = self.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, tuple):
                path.symlink_to(content[1])
            elif isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(cli, list(args), catch_exceptions=True)

    def validate(self) -> Result:
        return self.cli("-C", ".", "validate")
