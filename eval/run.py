"""``make eval``: retrieval quality and latency per search mode, on the man-page set.

Steps (docs in eval/README.md):

1. build the set (:mod:`eval.dataset`) and embed its chunks (cached, :mod:`eval.embeddings`);
2. build the collection as a replica does and time both indexes (:mod:`eval.service`);
3. dev split: each half's candidates once, then every fusion setting offline with the
   service's own ``reciprocal_rank_fusion``; print the grid's best rows;
4. test split: the worker's ``Searcher`` in process, modes interleaved per query, against
   the in-process references; print the table and which targets hold.

``--slice`` runs the small fixed subset the CI test uses.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import bm25s
import numpy as np
import Stemmer
import torch

from eval.dataset import EvalSet, Query, build, slice_of
from eval.embeddings import Chunks, embedded
from eval.metrics import Aggregation, Scores, documents, rrf, score
from eval.service import COLLECTION, Built, build_collection, searcher
from x0_common.events.rag import SearchMode, SearchRequest
from x0_rag.adapters.embedder import Embedder
from x0_rag.domain.fusion import reciprocal_rank_fusion
from x0_rag.domain.keywords import KeywordQuery
from x0_rag.domain.search import (
    DEFAULT_KEYWORD_WEIGHT,
    HYBRID_DEPTH,
    HYBRID_RRF_K,
    hybrid_weights,
)
from x0_rag.settings import RagSettings

logger = logging.getLogger(__name__)

# Chunks asked of every search: enough for ten distinct documents (about two chunks each).
SEARCH_K = 50
REFERENCE_DEPTH = 100
AGGREGATION: Aggregation = "max"
MODES: tuple[SearchMode, ...] = ("vector", "keyword", "hybrid")
SLICE_DOCUMENTS = 1000
SLICE_QUERIES = 100


@dataclass
class References:
    """In-process baselines: exact MiniLM over the chunks, bm25s over the documents."""

    chunks: Chunks
    embedder: Embedder
    bm25: bm25s.BM25
    ids: list[str]
    stemmer: Stemmer.Stemmer

    @classmethod
    def build(cls, dataset: EvalSet, chunks: Chunks, embedder: Embedder) -> References:
        ids = list(dataset.documents)
        stemmer = Stemmer.Stemmer("english")
        bm25 = bm25s.BM25()
        tokens = bm25s.tokenize(
            [dataset.documents[i] for i in ids], stemmer=stemmer, show_progress=False
        )
        bm25.index(tokens, show_progress=False)
        return cls(chunks, embedder, bm25, ids, stemmer)

    def exact(self, query: str) -> list[str]:
        """Documents by their best chunk's exact cosine similarity."""
        vector = self.embedder.embed([query])[0]
        similarity = self.chunks.vectors @ vector
        top = np.argpartition(-similarity, REFERENCE_DEPTH * 3)[: REFERENCE_DEPTH * 3]
        ranked = [(int(i), float(similarity[i])) for i in top[np.argsort(-similarity[top])]]
        return documents(ranked, self.chunks.document)[:REFERENCE_DEPTH]

    def lexical(self, query: str) -> list[str]:
        """Documents by bm25s alone (English stemmer and stop words), score above zero."""
        tokens = bm25s.tokenize([query], stemmer=self.stemmer, show_progress=False)
        if not tokens.ids[0]:
            return []
        found, scores = self.bm25.retrieve(
            tokens, k=min(REFERENCE_DEPTH, len(self.ids)), show_progress=False
        )
        return [self.ids[int(i)] for i, s in zip(found[0], scores[0], strict=True) if s > 0]


def timed(call: Callable[[], list[str]]) -> tuple[list[str], float]:
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def tune(built: Built, chunks: Chunks, embedder: Embedder, queries: list[Query]) -> None:
    """Dev split: every fusion setting over each half's candidates, printed best first."""
    collection = built.collection
    halves = []
    for query in queries:
        vector = embedder.embed([query.text])[0]
        by_vector = collection.index.search(vector, 200)[0].tolist()
        by_keyword = [i for i, _ in collection.lexical.search(KeywordQuery.parse(query.text), 200)]
        halves.append((by_vector, by_keyword))
    answers = [query.answer for query in queries]
    rows = []
    for depth, k, weight, how in itertools.product(
        (20, 50, 100, 200), (5, 10, 20, 40, 60, 100), (0.3, 0.4, 0.5, 0.6, 0.7), ("max", "sum2")
    ):
        rankings = []
        for by_vector, by_keyword in halves:
            fused = reciprocal_rank_fusion(
                [by_vector[:depth], by_keyword[:depth]],
                k=k,
                weights=hybrid_weights(weight),
                limit=SEARCH_K,
            )
            rankings.append(documents([(h.id, h.score) for h in fused], chunks.document, how))
        rows.append((score(rankings, answers), depth, k, weight, how))
    # Fusing documents instead of chunks: each half's chunks to documents (max) first.
    for k, weight in itertools.product((10, 20, 60), (0.4, 0.5, 0.6)):
        rankings = []
        for by_vector, by_keyword in halves:
            lists = [
                documents([(i, 0.0) for i in ids[:100]], chunks.document)
                for ids in (by_vector, by_keyword)
            ]
            rankings.append(rrf(lists, k=k, weights=hybrid_weights(weight)))
        rows.append((score(rankings, answers), 100, k, weight, "documents"))
    rows.sort(key=lambda row: (-row[0].recall10, -row[0].mrr10))
    print(f"\nDev split ({len(queries)} queries): hybrid fusion settings, best recall@10 first")
    print("| depth | RRF k | keyword weight | aggregation | recall@1 | recall@10 | MRR@10 |")
    print("|---|---|---|---|---|---|---|")
    chosen = (HYBRID_DEPTH, HYBRID_RRF_K, DEFAULT_KEYWORD_WEIGHT, AGGREGATION)
    shown = rows[:8] + [row for row in rows[8:] if row[1:] == chosen]
    for s, depth, k, weight, how in shown:
        mark = " (chosen)" if (depth, k, weight, how) == chosen else ""
        print(
            f"| {depth} | {k} | {weight} | {how}{mark} | {s.recall1:.3f} "
            f"| {s.recall10:.3f} | {s.mrr10:.3f} |"
        )
    for label, position, values in (
        ("depth", 1, (20, 50, 100, 200)),
        ("RRF k", 2, (5, 10, 20, 40, 60, 100)),
        ("keyword weight", 3, (0.3, 0.4, 0.5, 0.6, 0.7)),
        ("aggregation", 4, ("max", "sum2", "documents")),
    ):
        best = []
        for value in values:
            matching = [row for row in rows if row[position] == value]
            top = matching[0][0]
            best.append(f"{value}: {top.recall10:.3f}/{top.mrr10:.3f}")
        print(f"best recall@10/MRR@10 by {label}: " + ", ".join(best))


async def evaluate(
    built: Built,
    chunks: Chunks,
    embedder: Embedder,
    queries: list[Query],
    refs: References,
    *,
    examples: list[tuple[Query, list[str], list[str]]] | None = None,
) -> dict[str, Scores]:
    """Test split: the searcher's modes and the references, interleaved per query.

    ``examples`` gets (query, keyword top 3, hybrid top 3) where hybrid ranks the right
    page first and keyword does not.
    """
    search = searcher(built.collection, chunks, embedder)
    rankings: dict[str, list[list[str]]] = {}
    seconds: dict[str, list[float]] = {}
    exact_lists: list[list[str]] = []
    bm25_lists: list[list[str]] = []
    for query in queries:
        for mode in MODES:
            request = SearchRequest(collection=COLLECTION, query=query.text, k=SEARCH_K, mode=mode)
            started = time.perf_counter()
            result = await search.search(request, remaining=None)
            seconds.setdefault(mode, []).append(time.perf_counter() - started)
            ranked = [(hit.chunk_id, hit.score) for hit in result.hits]
            rankings.setdefault(mode, []).append(documents(ranked, chunks.document, AGGREGATION))
        keyword, hybrid = rankings["keyword"][-1][:3], rankings["hybrid"][-1][:3]
        if examples is not None and hybrid[:1] == [query.answer] != keyword[:1]:
            examples.append((query, keyword, hybrid))
        exact, spent = timed(lambda q=query.text: refs.exact(q))
        exact_lists.append(exact)
        seconds.setdefault("exact", []).append(spent)
        lexical, spent = timed(lambda q=query.text: refs.lexical(q))
        bm25_lists.append(lexical)
        seconds.setdefault("bm25", []).append(spent)
    answers = [query.answer for query in queries]
    table = {mode: score(rankings[mode], answers, seconds[mode]) for mode in MODES}
    table["exact"] = score(exact_lists, answers, seconds["exact"])
    table["bm25"] = score(bm25_lists, answers, seconds["bm25"])
    table["rrf"] = score(
        [rrf([e, b], k=60, weights=(1, 1)) for e, b in zip(exact_lists, bm25_lists, strict=True)],
        answers,
    )
    return table


def targets(table: dict[str, Scores]) -> list[tuple[str, bool, str]]:
    """The issue's targets: (name, met, the figures)."""
    vector, keyword, hybrid = table["vector"], table["keyword"], table["hybrid"]
    exact, bm25 = table["exact"], table["bm25"]
    better = max(exact.recall10, bm25.recall10)
    vector_ms, hybrid_ms = vector.p50_ms or 0.0, hybrid.p50_ms or 0.0
    return [
        (
            "vector within 0.01 of exact MiniLM (recall@10)",
            vector.recall10 >= exact.recall10 - 0.01,
            f"{vector.recall10:.3f} vs {exact.recall10:.3f}",
        ),
        (
            "keyword within 0.02 of bm25s (recall@10)",
            keyword.recall10 >= bm25.recall10 - 0.02,
            f"{keyword.recall10:.3f} vs {bm25.recall10:.3f}",
        ),
        (
            "hybrid recall@10 >= better reference + 0.02",
            hybrid.recall10 >= better + 0.02,
            f"{hybrid.recall10:.3f} vs {better:.3f} + 0.02",
        ),
        (
            "hybrid p50 <= 1.3 x vector p50",
            hybrid_ms <= 1.3 * vector_ms,
            f"{hybrid_ms:.1f} ms vs 1.3 x {vector_ms:.1f} ms",
        ),
    ]


def load(*, small: bool) -> tuple[EvalSet, Embedder, Chunks, Built]:
    """The set (or the CI slice), its embedded chunks and the built collection."""
    full = build()
    dataset = slice_of(full, documents=SLICE_DOCUMENTS, queries=SLICE_QUERIES) if small else full
    embedder = Embedder(num_threads=2)
    chunks = embedded(dataset.documents, embedder)
    # Searches run with the worker's thread count.
    torch.set_num_threads(RagSettings.model_fields["torch_threads"].default)
    return dataset, embedder, chunks, build_collection(chunks)


async def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval", description=__doc__)
    parser.add_argument("--slice", action="store_true", help="the CI test's small subset")
    args = parser.parse_args(argv)
    dataset, embedder, chunks, built = load(small=args.slice)
    print(
        f"Evaluation set: {len(dataset.documents)} man pages, {len(chunks.text)} chunks, "
        f"queries dev {len(dataset.split('dev'))} / test {len(dataset.split('test'))}"
    )
    print(
        f"Index build: vectors {built.vector_seconds:.1f} s, "
        f"lexical refresh (bm25s rebuild from kept word ids) {built.lexical_seconds:.2f} s "
        f"for {len(chunks.text)} chunks"
    )
    refs = References.build(dataset, chunks, embedder)
    if dataset.split("dev"):
        tune(built, chunks, embedder, dataset.split("dev"))
    examples: list[tuple[Query, list[str], list[str]]] = []
    table = await evaluate(built, chunks, embedder, dataset.split("test"), refs, examples=examples)
    print(
        f"\nTest split ({len(dataset.split('test'))} queries), k={SEARCH_K} chunks per search, "
        f"documents ranked by their best chunk; hybrid: depth {HYBRID_DEPTH}, "
        f"RRF k {HYBRID_RRF_K}, keyword weight {DEFAULT_KEYWORD_WEIGHT}"
    )
    print("| mode | recall@1 | recall@10 | MRR@10 | p50 ms |")
    print("|---|---|---|---|---|")
    names = {
        "vector": "vector (Searcher, hnswlib)",
        "keyword": "keyword (Searcher, BM25)",
        "hybrid": "hybrid (Searcher, weighted RRF)",
        "exact": "exact MiniLM in-process (reference)",
        "bm25": "bm25s alone over documents (reference)",
        "rrf": "RRF k=60 of the two references (top 100 each)",
    }
    for key, name in names.items():
        print(table[key].row(name))
    print(f"\nHybrid right where keyword is not: {len(examples)} test queries; the first three:")
    for query, keyword, hybrid in examples[:3]:
        print(f"  query {query.text!r} (answer {query.answer})")
        print(f"    keyword top 3: {', '.join(keyword)}")
        print(f"    hybrid  top 3: {', '.join(hybrid)}")
    print()
    met = targets(table)
    for name, ok, figures in met:
        print(f"{'MET ' if ok else 'MISSED'} {name}: {figures}")
    return 0 if all(ok for _, ok, _ in met) else 1


def run() -> None:
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    raise SystemExit(asyncio.run(main()))
