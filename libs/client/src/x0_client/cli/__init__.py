"""The ``x0`` command line (typer + rich), built on :class:`x0_client.Client`.

``x0 --help`` lists the command groups and the exit codes; every command's ``--help``
has examples. :func:`run` runs it in process and returns the exit code.
"""

from __future__ import annotations

from x0_client.cli.app import app, main, run

__all__ = ["app", "main", "run"]
