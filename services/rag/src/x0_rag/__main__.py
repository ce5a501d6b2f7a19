"""Run one RAG worker replica: ``python -m x0_rag``."""

from __future__ import annotations

from x0_common.worker import run_worker
from x0_rag.app import create_app
from x0_rag.settings import RagSettings


def main() -> None:
    """Start the worker with JSON logs and tracing from the environment."""
    run_worker("rag", RagSettings(), create_app)


if __name__ == "__main__":
    main()
