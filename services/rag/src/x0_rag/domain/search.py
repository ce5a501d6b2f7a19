"""Search one collection: vector (hnswlib), keyword (BM25, bm25s) or hybrid.

Per request: validate the filter (400/413 before any work) -> wait for
``min_version`` (bounded; 504 ``deadline_exceeded`` when this replica does not get
there in time) -> the collection must exist (404) -> result cache -> retrieve ->
read the hits' rows from PostgreSQL -> cache the result.

- ``vector``: the query's embedding (cached) against the replica's index, filtered
  inside hnswlib by the chunks' metadata; score = cosine similarity.
- ``keyword``: the replica's lexical index, BM25 with OR semantics (the best ``k``
  chunks sharing any word with the query; syntax in :mod:`x0_rag.domain.keywords`),
  filtered by the chunks' metadata; score = the BM25 score.
- ``hybrid``: both, each ``max(k, HYBRID_DEPTH)`` deep, fused by weighted reciprocal
  rank over chunk ids (:func:`hybrid_weights`, ``HYBRID_RRF_K``); score = the fused
  score.
  The depth, constant and default weight were chosen on the evaluation set's dev
  split (``make eval``, docs/rag.md).

Fewer matches than ``k`` give fewer hits, never an error. A hit whose chunk is gone
from PostgreSQL (deleted, its removal not applied here yet) is left out.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
from opentelemetry import trace
from pydantic import ValidationError

from x0_common.events.rag import SearchHit, SearchRequest, SearchResult
from x0_rag.domain.filters import MetadataFilter
from x0_rag.domain.fusion import reciprocal_rank_fusion
from x0_rag.errors import NotFound
from x0_rag.metrics import SERVICE, RagMetrics

if TYPE_CHECKING:
    from x0_rag.domain.ports import Embedder, Indexes, Retrieval, SearchCache

_tracer = trace.get_tracer("x0_rag")

# Candidates each half gives hybrid fusion (measured by make eval on the dev split).
HYBRID_DEPTH: Final = 100
# RRF's constant, and the keyword half's share when a request does not say (dev split:
# weight 0.4 ranks the right page first more often than 0.5, at equal recall@10).
HYBRID_RRF_K: Final = 40
DEFAULT_KEYWORD_WEIGHT: Final = 0.4
# Leave the reply this much of the caller's deadline after a version wait.
REPLY_MARGIN_SECONDS: Final = 0.05


@dataclass
class Searcher:
    """Runs searches on the replica's indexes, the source of truth, the model and the
    cache, each behind its port (:mod:`x0_rag.domain.ports`)."""

    indexes: Indexes
    retrieval: Retrieval
    batcher: Embedder
    cache: SearchCache | None
    metrics: RagMetrics
    max_version_wait_seconds: float

    def wait_bound(self, requested: float, remaining: float | None) -> float:
        """Seconds a version wait may take: the request's, this worker's and the deadline's."""
        bound = min(requested, self.max_version_wait_seconds)
        if remaining is not None:
            bound = min(bound, remaining - REPLY_MARGIN_SECONDS)
        return max(0.0, bound)

    async def search(self, request: SearchRequest, *, remaining: float | None) -> SearchResult:
        """Answer one search (see the module's steps)."""
        started = time.perf_counter()
        with _tracer.start_as_current_span(
            "rag.search",
            attributes={
                "x0.rag.collection": request.collection,
                "x0.rag.mode": request.mode,
                "x0.rag.k": request.k,
                "x0.rag.filtered": request.filter is not None,
            },
        ) as span:
            where = MetadataFilter.parse(request.filter)
            if request.min_version is not None:
                bound = self.wait_bound(self.max_version_wait_seconds, remaining)
                await self.indexes.wait_for(request.min_version, bound)
            if self.indexes.collection(
                request.collection
            ) is None and not await self.retrieval.collection_exists(request.collection):
                raise NotFound("no such collection", details={"collection": request.collection})
            key = self._result_key(request, where)
            result = await self._cached(key)
            span.set_attribute("x0.rag.cache", "miss" if result is None else "hit")
            if result is None:
                result = SearchResult(hits=await self._hits(request, where), mode=request.mode)
                if self.cache is not None:
                    await self.cache.store_result(key, result.model_dump_json().encode())
            span.set_attribute("x0.rag.hits", len(result.hits))
        self.metrics.search_latency.labels(SERVICE, request.mode).observe(
            time.perf_counter() - started
        )
        return result

    async def _cached(self, key: str) -> SearchResult | None:
        raw = await self.cache.result(key) if self.cache is not None else None
        if raw is None:
            return None
        try:
            return SearchResult.model_validate_json(raw)
        except ValidationError:  # written by another version of the contract
            return None

    def _result_key(self, request: SearchRequest, where: MetadataFilter) -> str:
        if self.cache is None:
            return ""
        canonical = json.dumps(
            [
                request.query,
                request.mode,
                request.k,
                request.ef,
                where.to_json(),
                request.keyword_weight,
            ],
            sort_keys=True,
            separators=(",", ":"),
        )
        versions = self.indexes.version_key(request.collection)
        return self.cache.result_key(request.collection, versions, canonical)

    async def _hits(self, request: SearchRequest, where: MetadataFilter) -> list[SearchHit]:
        name, k = request.collection, request.k
        ranked: list[tuple[int, float]]
        if request.mode == "vector":
            ranked = await self._vector(request, where, k)
        elif request.mode == "keyword":
            ranked = await self.indexes.keyword(name, request.query, k, where=where)
        else:
            depth = max(k, HYBRID_DEPTH)
            by_vector, by_keyword = await asyncio.gather(
                self._vector(request, where, depth),
                self.indexes.keyword(name, request.query, depth, where=where),
            )
            fused = reciprocal_rank_fusion(
                [[i for i, _ in by_vector], [i for i, _ in by_keyword]],
                k=HYBRID_RRF_K,
                weights=hybrid_weights(request.keyword_weight),
                limit=k,
            )
            ranked = [(hit.id, hit.score) for hit in fused]
        rows = await self.retrieval.hits(name, [chunk_id for chunk_id, _ in ranked])
        return [
            SearchHit(
                chunk_id=chunk_id,
                document_id=row.document_id,
                score=score,
                text=row.text,
                start=row.start,
                end=row.end,
                metadata=row.metadata,
            )
            for chunk_id, score in ranked
            if (row := rows.get(chunk_id)) is not None
        ]

    async def _vector(
        self, request: SearchRequest, where: MetadataFilter, k: int
    ) -> list[tuple[int, float]]:
        collection = self.indexes.collection(request.collection)
        if collection is None or len(collection) == 0:
            return []  # nothing indexed: no need to run the model
        vector = await self.embed(request.query)
        return await self.indexes.search(request.collection, vector, k, ef=request.ef, where=where)

    async def embed(self, query: str) -> npt.NDArray[np.float32]:
        """The query's embedding, from the cache or the model (span ``rag.embed``)."""
        with _tracer.start_as_current_span("rag.embed", attributes={"x0.rag.texts": 1}) as span:
            cached = await self.cache.embedding(query) if self.cache is not None else None
            span.set_attribute("x0.rag.cache", "miss" if cached is None else "hit")
            if cached is not None:
                return cached
            vector: npt.NDArray[np.float32] = (await self.batcher.embed([query]))[0]
            if self.cache is not None:
                await self.cache.store_embedding(query, vector)
            return vector


def hybrid_weights(keyword_weight: float | None) -> tuple[float, float]:
    """RRF weights of the (vector, keyword) lists: ``2(1-w)`` and ``2w``, so that
    ``w = 0.5`` weighs both halves 1 and ``w = 0``/``1`` ranks by one half only."""
    w = DEFAULT_KEYWORD_WEIGHT if keyword_weight is None else keyword_weight
    return 2.0 * (1.0 - w), 2.0 * w
