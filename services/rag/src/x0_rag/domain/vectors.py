"""Vector checks and exact cosine search: the arithmetic behind the index adapter.

Cosine distance is ``1 - cos(a, b)``, as hnswlib's ``cosine`` space reports it:
0 for the same direction, 1 for orthogonal, 2 for opposite.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from x0_rag.errors import InvalidInput

Ids = npt.NDArray[np.int64]
Distances = npt.NDArray[np.float32]
Rows = npt.NDArray[np.float32]


def as_rows(vectors: npt.ArrayLike, dim: int, *, single: bool = False) -> Rows:
    """``vectors`` as float32 rows of ``dim`` columns (one row when ``single``).

    Raises ``InvalidInput`` for another shape, NaN/infinite values or a zero vector,
    which has no direction and would turn every cosine into NaN.
    """
    rows = np.asarray(vectors, dtype=np.float32)
    if single and rows.ndim == 1:
        rows = rows[np.newaxis, :]
    if rows.ndim != 2 or rows.shape[1] != dim or (single and len(rows) != 1):
        raise InvalidInput(
            f"vectors must have {dim} dimensions", details={"shape": list(rows.shape)}
        )
    if not np.isfinite(rows).all() or not np.linalg.norm(rows, axis=1).all():
        raise InvalidInput("vectors must be finite and non-zero")
    return rows


def as_ids(ids: object) -> Ids:
    """Chunk ids as a flat int64 array; ``InvalidInput`` unless all are integers >= 0."""
    try:
        labels = np.asarray(list(ids), dtype=np.int64)  # type: ignore[call-overload]
    except (OverflowError, TypeError, ValueError) as error:
        raise InvalidInput("ids must be integers in int64 range") from error
    if labels.ndim != 1 or (labels < 0).any():
        raise InvalidInput("ids must be a flat list of integers >= 0")
    return labels


def last_occurrences(ids: Ids) -> npt.NDArray[np.intp]:
    """Positions of the last occurrence of each id, in input order (``[5, 7, 5] -> [1, 2]``)."""
    _, first_from_end = np.unique(ids[::-1], return_index=True)
    return np.sort(len(ids) - 1 - first_from_end)


def exact_nearest(
    query: Rows,
    ids: Ids,
    vectors_of: Callable[[Ids], Rows],
    k: int,
    *,
    block: int = 4096,
) -> tuple[Ids, Distances]:
    """The ``k`` ids nearest to ``query`` by cosine distance, by scanning all of ``ids``.

    Vectors are fetched ``block`` ids at a time, so memory stays bounded however
    many ids there are. Equal distances order by id: the result is deterministic.
    """
    unit = query.reshape(-1) / np.linalg.norm(query)
    best_ids: Ids = np.empty(0, np.int64)
    best: Distances = np.empty(0, np.float32)
    for first in range(0, len(ids), block):
        chunk = np.sort(ids[first : first + block])
        stored = np.asarray(vectors_of(chunk), dtype=np.float32)
        norms = np.linalg.norm(stored, axis=1)
        distances = (1.0 - (stored @ unit) / norms).astype(np.float32)
        best_ids = np.concatenate([best_ids, chunk])
        best = np.concatenate([best, distances])
        order = np.lexsort((best_ids, best))[:k]
        best_ids, best = best_ids[order], best[order]
    return best_ids, best
