"""The rag worker's searcher in process, over one collection built as a replica builds it.

``Searcher`` (:mod:`x0_rag.domain.search`) is the code the worker's SEARCH handler
runs. Here it gets:

- indexes: a ``CollectionIndex`` filled the way a rebuild from PostgreSQL fills it
  (``upsert_rows`` of the stored vectors, the chunks' texts into its
  ``LexicalIndex``, one ``refresh``), behind the same calls ``IndexManager`` makes
  (``search``/``keyword`` in a worker thread);
- the real model through the worker's ``DynamicBatcher`` (each query embedded once
  per search: there is no Redis cache);
- rows from memory instead of PostgreSQL (a dict lookup, so latencies here leave out
  the worker's row read, which every mode pays alike), and no Kafka hop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sized
from dataclasses import dataclass

import numpy.typing as npt

from eval.embeddings import Chunks
from x0_common.events.rag import IndexParams
from x0_common.metrics import new_registry
from x0_rag.adapters.embedder import DynamicBatcher, Embedder
from x0_rag.adapters.index.collection import CollectionIndex
from x0_rag.domain.filters import MetadataFilter
from x0_rag.domain.keywords import KeywordQuery
from x0_rag.domain.ports import ChunkRow
from x0_rag.domain.search import Searcher
from x0_rag.metrics import RagMetrics

COLLECTION = "eval"


@dataclass
class Built:
    """The collection and how long its two indexes took to build."""

    collection: CollectionIndex
    vector_seconds: float
    lexical_seconds: float


def build_collection(chunks: Chunks) -> Built:
    """A collection index over every chunk (chunk id = its position)."""
    collection = CollectionIndex.empty(COLLECTION, IndexParams(), capacity=len(chunks.text))
    ids = list(range(len(chunks.text)))
    started = time.perf_counter()
    for first in range(0, len(ids), 2048):
        collection.upsert_rows(ids[first : first + 2048], chunks.vectors[first : first + 2048])
    vector_seconds = time.perf_counter() - started
    collection.metadata = {chunk_id: {} for chunk_id in ids}
    collection.lexical.upsert(dict(enumerate(chunks.text)))
    started = time.perf_counter()
    collection.lexical.refresh()
    return Built(collection, vector_seconds, time.perf_counter() - started)


class OneCollection:
    """The ``Indexes`` port over one collection, as ``IndexManager`` serves it."""

    def __init__(self, collection: CollectionIndex) -> None:
        self._collection = collection

    def collection(self, name: str) -> Sized | None:
        return self._collection if name == COLLECTION else None

    def version_key(self, name: str) -> str:
        return self._collection.version_key()

    async def search(
        self,
        name: str,
        vector: npt.ArrayLike,
        k: int,
        *,
        ef: int | None = None,
        where: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        return await asyncio.to_thread(
            self._collection.search, vector, k, ef=ef, where=where or MetadataFilter()
        )

    async def keyword(
        self, name: str, query: str, k: int, *, where: MetadataFilter | None = None
    ) -> list[tuple[int, float]]:
        return await asyncio.to_thread(
            self._collection.keyword, KeywordQuery.parse(query), k, where=where or MetadataFilter()
        )

    async def wait_for(self, token: str, timeout: float) -> None:
        return None


class MemoryRows:
    """The ``Retrieval`` port over the chunks in memory."""

    def __init__(self, chunks: Chunks) -> None:
        self._chunks = chunks

    async def collection_exists(self, name: str) -> bool:
        return name == COLLECTION

    async def hits(self, collection: str, ids: list[int]) -> dict[int, ChunkRow]:
        text, owner = self._chunks.text, self._chunks.document
        return {
            i: ChunkRow(
                chunk_id=i,
                document_id=owner[i],
                text=text[i],
                start=0,
                end=len(text[i]),
                metadata={},
            )
            for i in ids
        }


def searcher(collection: CollectionIndex, chunks: Chunks, embedder: Embedder) -> Searcher:
    """The worker's searcher over this collection, the model and rows in memory."""
    return Searcher(
        indexes=OneCollection(collection),
        retrieval=MemoryRows(chunks),
        batcher=DynamicBatcher(embedder.embed),
        cache=None,
        metrics=RagMetrics(new_registry()),
        max_version_wait_seconds=1.0,
    )
