"""The command line: the imperative shell around the pure core.

Every command module registers one click command; ``main`` turns any ReconcilerError into
``Error: …`` on stderr and its exit code, once, here.
"""

from reconciler.cli.main import cli, main

__all__ = ["cli", "main"]
