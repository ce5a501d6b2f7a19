"""Run the crypto worker: ``python -m x0_crypto``."""

from __future__ import annotations

import uvicorn

from x0_common.logs import setup_logging
from x0_common.tracing import setup_tracing
from x0_crypto.app import create_app
from x0_crypto.settings import CryptoSettings


def main() -> None:
    """Start the worker with JSON logs and tracing from the environment."""
    settings = CryptoSettings()
    setup_logging("crypto", settings.common.log_level)
    provider = setup_tracing("x0-crypto")
    app = create_app(settings, tracer_provider=provider)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
