"""Run the crypto worker: ``python -m x0_crypto``; operators' commands (KEK rotation):
``python -m x0_crypto rewrap-kek`` and others, see :mod:`x0_crypto.admin`."""

from __future__ import annotations

import sys

from x0_common.worker import run_worker
from x0_crypto.app import create_app
from x0_crypto.settings import CryptoSettings


def main() -> None:
    """Start the worker with JSON logs and tracing from the environment, or run the
    operators' command named on the command line."""
    if len(sys.argv) > 1:
        from x0_crypto import admin  # noqa: PLC0415 - only the commands need it

        sys.exit(admin.main(sys.argv[1:]))
    run_worker("crypto", CryptoSettings(), create_app)


if __name__ == "__main__":
    main()
