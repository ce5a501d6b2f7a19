"""``python -m eval`` (``make eval``)."""

import os

# Before numpy and torch load (see x0_rag.adapters.embedder); nothing downloads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from eval.run import run

run()
