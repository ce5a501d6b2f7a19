"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009).

Each input is one retriever's ranked list of chunk ids, best first (the vector and
the keyword retriever share one chunk id space). A chunk's fused score is

    score(d) = sum over lists i containing d of  weight_i / (k + rank_i(d))

with ranks starting at 1 and ``k = 60`` as in the paper: large enough that the
head of one list cannot drown the other, small enough that rank still matters.
Only ranks are used, so cosine distances and BM25 scores need no calibration.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from x0_rag.errors import InvalidInput

RRF_K = 60


@dataclass(frozen=True, slots=True)
class FusedHit:
    """One fused result: the chunk id, its RRF score and its rank in each input list."""

    id: int
    score: float
    # ranks[i] is the 1-based rank in input list i, None where the list lacks the id;
    # kept so that a response can explain why a chunk placed where it did.
    ranks: tuple[int | None, ...]


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[int]],
    *,
    k: int = RRF_K,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> list[FusedHit]:
    """Fuse ranked id lists into one list, best first.

    An id repeated within one list counts once, at its best rank. Ties in score are
    broken by the best single rank the id reached, then by the earliest list that
    gave it that rank (so list order states which retriever wins ties), which makes
    the output deterministic for any input.
    """
    if k < 0:
        raise InvalidInput("RRF k must be >= 0", details={"k": k})
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise InvalidInput(
            "one weight per ranked list",
            details={"lists": len(rankings), "weights": len(weights)},
        )
    if any(not math.isfinite(weight) or weight < 0 for weight in weights):
        raise InvalidInput("weights must be finite and >= 0", details={"weights": list(weights)})
    if limit is not None and limit < 0:
        raise InvalidInput("limit must be >= 0", details={"limit": limit})

    ranks: dict[int, list[int | None]] = {}
    for list_index, ranking in enumerate(rankings):
        for position, chunk_id in enumerate(ranking, start=1):
            slots = ranks.setdefault(chunk_id, [None] * len(rankings))
            if slots[list_index] is None:  # first occurrence is the best rank
                slots[list_index] = position

    hits = [
        FusedHit(
            id=chunk_id,
            # fsum is exactly rounded, so equal rank multisets give bit-equal scores
            # whatever the list order, and the tie-break below decides, not rounding.
            score=math.fsum(
                weight / (k + rank)
                for weight, rank in zip(weights, slots, strict=True)
                if rank is not None
            ),
            ranks=tuple(slots),
        )
        for chunk_id, slots in ranks.items()
    ]
    hits.sort(key=_order)
    return hits if limit is None else hits[:limit]


def _order(hit: FusedHit) -> tuple[float, int, int]:
    best_rank, best_list = min(
        (rank, list_index) for list_index, rank in enumerate(hit.ranks) if rank is not None
    )
    return (-hit.score, best_rank, best_list)
