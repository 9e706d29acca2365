"""Paths named by a config: include globs, and input files that must stay inside the root.

A pull request can edit any file of the config root, and CI runs ``apply`` on merge: a path
that leads out of the root (``..``, an absolute path, a symlink) would let a PR make CI read
and upload any file of the runner (``/etc/passwd``, credentials). Every path is therefore
checked twice: lexically (the path as written stays inside the root) and for real (with
symlinks resolved, it still does), and must be a regular file.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path, PurePosixPath


def shown(path: Path) -> str:
    """How a file is named in messages: relative to the working folder when inside it
    (``examples/jobs/chat.yaml``), absolute otherwise."""
    absolute = Path(os.path.normpath(Path(path).absolute()))
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(absolute)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def glob_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot be used as an include glob, or None."""
    if PurePosixPath(pattern).is_absolute() or Path(pattern).is_absolute():
        return "must be relative to the config root"
    if ".." in PurePosixPath(pattern).parts or "\\" in pattern:
        return "must stay inside the config root (no '..'; use '/' between folders)"
    return None


def _has_magic(segment: str) -> bool:
    return any(c in segment for c in "*?[")


def expand_glob(root: Path, pattern: str) -> list[Path]:
    """Files under ``root`` matching ``pattern`` ('**' = any number of folders), sorted.

    Hidden entries (``.git``, ``.reconciler``) match only a segment that starts with '.';
    symlinked folders are not entered (no loops, no escapes)."""
    segments = [s for s in PurePosixPath(pattern).parts if s not in ("", ".")]
    found: set[Path] = set()

    def entries(folder: Path) -> list[os.DirEntry[str]]:
        try:
            with os.scandir(folder) as it:
                return list(it)
        except OSError:
            return []

    def walk(folder: Path, rest: list[str]) -> None:
        if not rest:
            return
        head, tail = rest[0], rest[1:]
        if head == "**":
            walk(folder, tail)
            for entry in entries(folder):
                if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
                    walk(Path(entry.path), rest)
            return
        if not _has_magic(head):
            target = folder / head
            if tail:
                if target.is_dir() and not target.is_symlink():
                    walk(target, tail)
            elif target.is_file():
                found.add(target)
            return
        for entry in entries(folder):
            if entry.name.startswith(".") and not head.startswith("."):
                continue
            if not fnmatch.fnmatchcase(entry.name, head):
                continue
            if tail:
                if entry.is_dir(follow_symlinks=False):
                    walk(Path(entry.path), tail)
            elif entry.is_file():
                found.add(Path(entry.path))

    walk(root, segments)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def outside_problem(root: Path, path: Path) -> str | None:
    """Why ``path`` (a file of the root, such as ``reconciler.yaml``) may not be read: it
    leads outside the root through a symlink. None when it stays inside."""
    real = path.resolve()
    if _inside(real, root.resolve()):
        return None
    return (
        "leads outside the config root through a symlink; configuration files must live "
        "inside it (the file was not read)"
    )


def resolve_inside(root: Path, base: Path, ref: str) -> tuple[Path, str] | str:
    """Resolve ``ref`` (as written in a file of folder ``base``) to a regular file inside
    ``root``: returns (real path, path relative to root), or why it is refused."""
    candidate = Path(ref) if Path(ref).is_absolute() else base / ref
    lexical = Path(os.path.normpath(candidate))
    if not _inside(lexical, root):
        return "is outside the config root; input files must live inside it"
    rel = lexical.relative_to(root).as_posix()
    if not lexical.exists():
        if lexical.is_symlink():
            return f"{rel} is a broken symlink"
        return f"no such file: {rel}"
    real = lexical.resolve()
    if not _inside(real, root.resolve()):
        return f"{rel} leads outside the config root through a symlink"
    if not real.is_file():
        kind = "a folder" if real.is_dir() else "not a regular file"
        return f"{rel} is {kind}"
    return real, rel
