"""What the CLI prints that it did not compose from constants: shown safely.

``shown(text)`` is applied to errors, tracebacks under ``--debug``, and the executor's
progress lines: every recognisable part of the API key (as the environment holds it) is
redacted, and every character that is not printable is escaped, line by line (the line
breaks of a multi-line report are ours; the views escape the API's strings themselves).
"""

from __future__ import annotations

import os

from reconciler.render.safe import terminal_lines
from reconciler.secrets import Redactor


def shown(text: str) -> str:
    redactor = Redactor.from_env(os.environ)
    # Redact before escaping (the raw key), and after (the key as escaping writes it).
    return redactor.redact(terminal_lines(redactor.redact(text)))
