"""Run one RAG worker replica: ``python -m x0_rag``."""

from __future__ import annotations

import uvicorn

from x0_common.logs import setup_logging
from x0_common.tracing import setup_tracing
from x0_rag.app import create_app
from x0_rag.settings import RagSettings


def main() -> None:
    """Start the worker with JSON logs and tracing from the environment."""
    settings = RagSettings()
    setup_logging("rag", settings.common.log_level)
    provider = setup_tracing("x0-rag")
    app = create_app(settings, tracer_provider=provider)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
