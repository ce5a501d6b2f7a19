"""Embed the evaluation corpus into the cache ahead of ``make eval`` (optional)."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from eval.dataset import build
from eval.embeddings import embedded
from x0_rag.adapters.embedder import Embedder

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    chunks = embedded(build().documents, Embedder(num_threads=2))
    logging.getLogger(__name__).info("%d chunks cached", len(chunks.text))
