"""Random unit vectors of the model's width, for index tests that need no model."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from x0_rag.adapters.embedder import DIMENSIONS as DIM


def unit_vectors(count: int, seed: int) -> npt.NDArray[np.float32]:
    """``count`` rows of length 1, the same for the same ``seed``."""
    rows = np.random.default_rng(seed).standard_normal((count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)
