"""``python -m eval`` (``make eval``)."""

import os
import sys

# Before numpy and torch load (see x0_rag.adapters.embedder); nothing downloads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

from eval.run import run  # noqa: E402 - after the environment and stdout settings

run()
