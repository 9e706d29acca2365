"""Where a plan comes from: the git commit of the config root (``reconciler.commit``).

Every job created carries the commit its configuration was planned from, so that a result
can be traced to the reviewed change. ``<sha>-dirty`` says the files the configuration
reads differed from that commit when planning: something tracked under the config root was
modified, staged, deleted or renamed, or a file the configuration read is not committed.
Untracked files it did not read (a saved plan, notes) and the local emulator's state
(``.reconciler/``) do not count. Outside a git work tree, or without ``git``, there is no
commit and the tag is left out.

Read with ``git`` itself (it knows worktrees, packed refs, submodules, ``safe.directory``),
defensively: no pager, no prompt, no optional locks, no fsmonitor hook, a timeout, and any
failure means "unknown", never an error: provenance must not stop a plan.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Final

from reconciler.tags import DIRTY_SUFFIX

TIMEOUT: Final = 10.0
_SHA: Final = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
LOCAL_STATE: Final = ".reconciler"


def _git(root: Path, *args: str) -> str | None:
    env = {
        **os.environ,
        "GIT_OPTIONAL_LOCKS": "0",  # status must not take the index lock
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_PAGER": "cat",
        "LC_ALL": "C",
    }
    command = ["git", "-c", "core.fsmonitor=false", "--no-pager", *args]
    try:
        done = subprocess.run(
            command,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.decode("utf-8", "surrogateescape")


def git_commit(root: Path, read: Iterable[Path] = ()) -> str | None:
    """The commit checked out at ``root`` (``-dirty`` appended, see above); ``read``: the
    files the configuration read (YAML and inputs), absolute or relative to the cwd."""
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    top = _git(root, "rev-parse", "--show-toplevel")
    if head is None or top is None or not _SHA.fullmatch(head.strip()):
        return None
    sha = head.strip()
    status = _git(
        root, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames", "--", "."
    )
    if status is None:  # cannot tell: say so rather than claim a clean tree
        return sha + DIRTY_SUFFIX
    toplevel = Path(top.strip()).resolve()
    return sha + (DIRTY_SUFFIX if _dirty(status, toplevel, root.resolve(), read) else "")


def _dirty(status: str, toplevel: Path, root: Path, read: Iterable[Path]) -> bool:
    read_files = {Path(p).resolve() for p in read}
    state = root / LOCAL_STATE
    for code, path in _entries(status):
        where = (toplevel / path).resolve()
        if where == state or state in where.parents:
            continue
        if code == "??" and where not in read_files:
            continue
        return True
    return False


def _entries(status: str) -> Sequence[tuple[str, str]]:
    """``git status --porcelain=v1 -z`` as (XY, path) pairs; paths from the top level."""
    out = []
    for item in status.split("\0"):
        if len(item) > 3 and item[2] == " ":
            out.append((item[:2], item[3:]))
    return out
