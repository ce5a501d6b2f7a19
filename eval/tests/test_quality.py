"""CI regression: the issue-16 relations on a small fixed slice of the evaluation set.

The slice (:func:`eval.dataset.slice_of`): the first 100 test queries over 1,000 man
pages, the worker's ``Searcher`` in process as ``make eval`` runs it, the real model
and bm25s (embeddings cached under ``.stack/eval-cache``; a cold run embeds about
2,000 chunks, a minute or two on two cores). With 100 queries one query is 0.01 of
recall, so each relation holds with a margin, not to the figure ``make eval`` prints.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest
from eval.run import References, evaluate, load

pytestmark = [pytest.mark.unit, pytest.mark.slow, pytest.mark.timeout(900)]

# Recall margins for a 100-query sample, and the latency ratio's for a shared machine.
MARGIN = 0.03
LATENCY_RATIO = 1.5


async def test_hybrid_beats_both_halves_and_each_mode_matches_its_reference() -> None:
    dataset, embedder, chunks, built = load(small=True)
    refs = References.build(dataset, chunks, embedder)
    table = await evaluate(built, chunks, embedder, dataset.split("test"), refs)
    vector, keyword, hybrid = table["vector"], table["keyword"], table["hybrid"]
    exact, bm25 = table["exact"], table["bm25"]
    assert vector.recall10 >= exact.recall10 - 0.01 - MARGIN
    assert keyword.recall10 >= bm25.recall10 - 0.02 - MARGIN
    assert hybrid.recall10 > max(exact.recall10, bm25.recall10)
    assert hybrid.mrr10 > max(vector.mrr10, keyword.mrr10)
    assert vector.p50_ms is not None
    assert hybrid.p50_ms is not None
    assert hybrid.p50_ms <= LATENCY_RATIO * vector.p50_ms
