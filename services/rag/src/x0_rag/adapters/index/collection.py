"""One collection on this replica: its vectors, words, chunk metadata and applied versions.

Methods here are synchronous and may be slow (hnswlib, bm25s); the manager calls them
in a worker thread and never applies two batches at once. ``VectorIndex`` locks every
hnswlib call itself and ``LexicalIndex`` searches the scorer it built last, so searches
may run beside an apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from x0_common.events.rag import IndexedChunk, IndexParams
from x0_rag.adapters.hnsw import DEFAULT_CAPACITY, DIMENSIONS, VectorIndex
from x0_rag.adapters.lexical import LexicalIndex
from x0_rag.domain.filters import MetadataFilter
from x0_rag.domain.keywords import KeywordQuery

# Search breadth per result wanted, when a request does not set ef.
EF_PER_K = 4


@dataclass(eq=False)
class CollectionIndex:
    """A collection's ``VectorIndex`` and ``LexicalIndex`` plus what filtering and replay
    need beside them.

    ``lexical`` holds the chunks whose text the caller gave (``apply``'s ``texts``): a
    chunk PostgreSQL no longer has when its event is applied has a vector here but no
    words until the event that removed it is applied too.

    ``versions`` maps ingest partition -> highest source offset applied to this
    collection: an event at or below it is already in the index (a replay after a
    snapshot, a rebuild, or a writer's re-publish) and is skipped, so that an old
    event can never bring back a chunk a later one removed.
    """

    name: str
    params: IndexParams
    index: VectorIndex
    metadata: dict[int, dict[str, Any]] = field(default_factory=dict)
    versions: dict[int, int] = field(default_factory=dict)
    lexical: LexicalIndex = field(default_factory=LexicalIndex)
    # Changed since its last snapshot.
    dirty: bool = True

    @classmethod
    def empty(cls, name: str, params: IndexParams, *, capacity: int = 0) -> CollectionIndex:
        """A new, empty index with the collection's hnswlib parameters."""
        index = VectorIndex(
            m=params.m,
            ef_construction=params.ef_construction,
            ef=params.ef,
            capacity=max(capacity, DEFAULT_CAPACITY),
        )
        return cls(name=name, params=params, index=index)

    def seen(self, partition: int, offset: int) -> bool:
        """Whether the event from ingest ``partition:offset`` is already applied here."""
        return offset <= self.versions.get(partition, -1)

    def apply(
        self,
        partition: int,
        offset: int,
        *,
        upserted: list[IndexedChunk],
        removed: list[int],
        final: bool = True,
        texts: Mapping[int, str] | None = None,
    ) -> bool:
        """Apply one event (removals, then upserts); False when it was applied before.

        ``texts`` holds the upserted chunks' texts by id (read from PostgreSQL by the
        caller); the lexical index gets those it finds there (``refresh`` it after).

        An ingest too large for one event comes as several with the same source; the
        version moves with the ``final`` one, so a replay re-applies the earlier parts
        (harmless: upserts replace, removals of absent ids do nothing).
        """
        if self.seen(partition, offset):
            return False
        if removed:
            self.index.delete(removed)
            self.lexical.delete(removed)
            for chunk_id in removed:
                self.metadata.pop(chunk_id, None)
        if upserted:
            rows = np.asarray([chunk.vector for chunk in upserted], dtype=np.float32)
            self.upsert_rows([chunk.chunk_id for chunk in upserted], rows)
            for chunk in upserted:
                self.metadata[chunk.chunk_id] = chunk.metadata
            found = texts or {}
            self.lexical.upsert(
                {
                    chunk.chunk_id: found[chunk.chunk_id]
                    for chunk in upserted
                    if chunk.chunk_id in found
                }
            )
        if final:
            self.versions[partition] = offset
        self.dirty = True
        return True

    def upsert_rows(self, ids: list[int], rows: npt.ArrayLike) -> None:
        """Insert or replace vectors (metadata is the caller's to set)."""
        self.index.upsert(ids, rows)
        self.dirty = True

    def search(
        self, vector: npt.ArrayLike, k: int, *, ef: int | None, where: MetadataFilter
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, cosine similarity)`` pairs, best first, that pass ``where``.

        Without ``ef`` the search breadth is the collection's, but at least ``4k``:
        hnswlib's recall falls as ``k`` nears ``ef`` (hybrid asks for 100 candidates,
        documents need several chunks each; ``make eval`` compares with exact search).
        """
        if ef is None:
            ef = max(self.params.ef, EF_PER_K * k)
        metadata = self.metadata
        accept = None if where.is_empty else (lambda label: where.matches(metadata.get(label, {})))
        ids, distances = self.index.search(vector, k, ef=ef, filter=accept)
        return [
            (int(i), float(1.0 - d)) for i, d in zip(ids.tolist(), distances.tolist(), strict=True)
        ]

    def keyword(
        self, query: KeywordQuery, k: int, *, where: MetadataFilter
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, BM25 score)`` pairs, best first, that pass ``where``."""
        metadata = self.metadata
        accept = None if where.is_empty else (lambda label: where.matches(metadata.get(label, {})))
        return self.lexical.search(query, k, accept=accept)

    def version_key(self) -> str:
        """What this collection has applied, as text: changes whenever its index does."""
        return ",".join(f"{p}:{o}" for p, o in sorted(self.versions.items())) or "-"

    def __len__(self) -> int:
        return len(self.index)


def versions_from(raw: Mapping[str, int] | Mapping[int, int]) -> dict[int, int]:
    """JSON's string keys back to partition numbers."""
    return {int(p): int(o) for p, o in raw.items()}


__all__ = ["DIMENSIONS", "CollectionIndex", "versions_from"]
