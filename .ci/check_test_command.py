#!/usr/bin/env python3
"""Refuse a test command that cannot fail: `python3 .ci/check_test_command.py 'COMMAND'`.

CI is green when the README's test command exits 0, so that command must exit non-zero
whenever a test fails. Rather than hunting for ways to hide a failure (``|| true``,
``; true``, ``|| :``, ``set +e``, ``|| exit 0``, a trailing ``exit 0``, ``| tee log``
without pipefail, ``trap``, ``!``, a subshell, ``eval``, ``--collect-only`` ...), the
command must have a shape in which none can occur:

- simple commands joined by ``&&`` only (line continuations allowed): no ``;``, ``||``,
  ``|``, ``&``, newline, redirection, subshell, grouping, comment, command or process
  substitution, so a failing step ends the whole command with its status;
- no shell builtin or keyword that changes how failures count (``set``, ``exit``,
  ``trap``, ``true``, ``:``, ``eval``, ``source``, ``if`` ...);
- the last command runs pytest (``pytest``, or ``python -m pytest``), so the command's
  status is pytest's; and pytest is not asked to do something that succeeds without
  running the tests (``--collect-only``, ``--setup-plan``, ``--version``, ``--help`` ...),
  neither on its command line nor through ``PYTEST_ADDOPTS``.

Exit 0 and no output when the command is acceptable; else exit 1 with the reasons. Standard
library only: it runs before any virtual environment exists.
"""

from __future__ import annotations

import re
import shlex
import sys

OPERATORS = {"&&"}
CONTROL = set("();<>|&") | {"||", ";;", "|&", ">>", "<<", "&>", ">&", "<&"}
BUILTINS = {
    "set", "exit", "return", "trap", "true", "false", ":", "eval", "source", ".", "exec",
    "alias", "unalias", "shopt", "builtin", "command", "!", "if", "then", "else", "elif",
    "fi", "while", "until", "for", "do", "done", "case", "esac", "{", "}", "function",
    "select", "coproc", "time", "ulimit", "wait", "disown", "bg", "fg",
}  # fmt: skip
# pytest options after which it exits 0 without running the tests.
NO_RUN = {
    "--co", "--collect-only", "--collectonly", "--setup-plan", "--setup-only", "--fixtures",
    "--funcargs", "--fixtures-per-test", "--markers", "--version", "-V", "--help", "-h",
    "--suppress-no-test-exit-code",
}  # fmt: skip
PYTHON = re.compile(r"(.*/)?python(3(\.\d+)?)?")
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def problems(command: str) -> list[str]:
    """Why ``command`` could exit 0 while tests fail (empty when it cannot)."""
    found: list[str] = []
    text = command.replace("\\\n", " ").strip()  # line continuations only
    if not text:
        return ["the test command is empty"]
    if "\n" in text or "\r" in text:
        found.append(
            "it has several lines: join the steps with && (a later line hides an earlier failure)"
        )
    if "#" in text:
        found.append("it has a comment ('#'): write only the commands")
    if "`" in text or "$(" in text or "<(" in text or ">(" in text:
        found.append("it uses command or process substitution")
    try:
        lexer = shlex.shlex(text.replace("\n", " "), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError as err:
        return [*found, f"it cannot be read as a shell command ({err})"]
    steps: list[list[str]] = [[]]
    for token in tokens:
        if token in OPERATORS:
            steps.append([])
        elif token in CONTROL or (token and set(token) <= set("();<>|&")):
            found.append(
                f"it uses {token!r}: only '&&' may join its steps (anything else can hide "
                "a failure, or the status of pytest)"
            )
            steps.append([])
        else:
            steps[-1].append(token)
    steps = [s for s in steps if s] or [[]]
    for step in steps:
        words = list(step)
        while words and ASSIGNMENT.match(words[0]):
            name, _, value = words.pop(0).partition("=")
            if name == "PYTEST_ADDOPTS":
                bad = sorted(NO_RUN & set(_options(shlex.split(value))))
                if bad:
                    found.append(f"PYTEST_ADDOPTS asks pytest for {', '.join(bad)}: no test runs")
            if name in {"BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PROMPT_COMMAND"}:
                found.append(f"it sets {name}, which changes how the shell runs it")
        if words and words[0] in BUILTINS:
            found.append(f"it runs {words[0]!r}, which changes how failures count")
    last = steps[-1]
    while last and ASSIGNMENT.match(last[0]):
        last = last[1:]
    args = _pytest_args(last)
    if args is None:
        shown = " ".join(last) or "nothing"
        found.append(
            f"its last step ({shown}) does not run pytest: the command's status must be "
            "pytest's (end it with `pytest ...` or `python -m pytest ...`)"
        )
    else:
        bad = sorted(NO_RUN & set(_options(args)))
        if bad:
            found.append(f"it asks pytest for {', '.join(bad)}: pytest then runs no test")
    return list(dict.fromkeys(found))


def _pytest_args(words: list[str]) -> list[str] | None:
    """The arguments given to pytest when ``words`` runs it, else None."""
    if not words:
        return None
    program = words[0].rsplit("/", 1)[-1]
    if program in {"pytest", "py.test"}:
        return words[1:]
    if PYTHON.fullmatch(words[0]) and words[1:3] == ["-m", "pytest"]:
        return words[3:]
    return None


def _options(args: list[str]) -> list[str]:
    """Options as pytest reads them (``--co``, ``--collect-only=...``)."""
    return [a.split("=", 1)[0] for a in args if a.startswith("-")]


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_test_command.py 'COMMAND'", file=sys.stderr)
        return 2
    found = problems(argv[1])
    if not found:
        return 0
    print(
        "CI: refusing the README's test command: it could pass with failing tests.", file=sys.stderr
    )
    for reason in found:
        print(f"  - {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
