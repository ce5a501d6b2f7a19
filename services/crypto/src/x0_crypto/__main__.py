"""Run the crypto worker: ``python -m x0_crypto``."""

from __future__ import annotations

from x0_common.worker import run_worker
from x0_crypto.app import create_app
from x0_crypto.settings import CryptoSettings


def main() -> None:
    """Start the worker with JSON logs and tracing from the environment."""
    run_worker("crypto", CryptoSettings(), create_app)


if __name__ == "__main__":
    main()
