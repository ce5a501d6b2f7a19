"""Ranking metrics over documents, and chunk-to-document aggregation.

Each query has one right document, so recall@k is the share of queries whose
document is in the top ``k``, and MRR@10 the mean of 1/rank (0 past rank 10).

A search returns chunks; a document's rank comes from its chunks by one of:

- ``max``: the document ranks where its best chunk does (first occurrence);
- ``sum2``: by the sum of the scores of its two best chunks (a document that matches
  in two chunks gains on one that matches in one).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Aggregation = Literal["max", "sum2"]


def documents(
    ranked: Sequence[tuple[int, float]], owner: Sequence[str], how: Aggregation = "max"
) -> list[str]:
    """Document ids, best first, from ``(chunk id, score)`` pairs ranked best first."""
    if how == "max":
        return list(dict.fromkeys(owner[chunk_id] for chunk_id, _ in ranked))
    best: dict[str, list[float]] = {}
    for chunk_id, score in ranked:
        scores = best.setdefault(owner[chunk_id], [])
        if len(scores) < 2:
            scores.append(score)
    # sorted() is stable: equal sums keep the order of their best chunks.
    return sorted(best, key=lambda doc: -sum(best[doc]))


@dataclass(frozen=True, slots=True)
class Scores:
    """The figures of one mode over one set of queries."""

    recall1: float
    recall10: float
    mrr10: float
    p50_ms: float | None = None

    def row(self, name: str) -> str:
        """One line of the printed table."""
        latency = "—" if self.p50_ms is None else f"{self.p50_ms:.1f}"
        return (
            f"| {name} | {self.recall1:.3f} | {self.recall10:.3f} | {self.mrr10:.3f} | {latency} |"
        )


def score(
    rankings: Sequence[Sequence[str]], answers: Sequence[str], seconds: Sequence[float] = ()
) -> Scores:
    """recall@1, recall@10, MRR@10 (and p50 latency) of rankings against the answers."""
    ranks = []
    for ranking, answer in zip(rankings, answers, strict=True):
        top = list(ranking[:10])
        ranks.append(top.index(answer) + 1 if answer in top else None)
    count = len(ranks)
    return Scores(
        recall1=sum(rank == 1 for rank in ranks) / count,
        recall10=sum(rank is not None for rank in ranks) / count,
        mrr10=sum(1 / rank for rank in ranks if rank is not None) / count,
        p50_ms=1000 * statistics.median(seconds) if seconds else None,
    )


def rrf(lists: Sequence[Sequence[str]], *, k: int, weights: Sequence[float]) -> list[str]:
    """Weighted reciprocal rank fusion of ranked id lists (ties: first list's order)."""
    fused: dict[str, float] = {}
    for ranking, weight in zip(lists, weights, strict=True):
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return sorted(fused, key=lambda item: -fused[item])
