"""What a search needs from storage and the model, as small Protocols the adapters implement.

* :class:`Retrieval`: what PostgreSQL answers (collection existence, the rows of
  hits) — :class:`~x0_rag.adapters.retrieval.PostgresRetrieval`;
* :class:`Indexes`: the replica's vector and lexical indexes and applied versions —
  :class:`~x0_rag.adapters.index.IndexManager`;
* :class:`Embedder`: texts to vectors, batched —
  :class:`~x0_rag.adapters.embedder.DynamicBatcher`;
* :class:`SearchCache`: query embeddings and results —
  :class:`~x0_rag.adapters.cache.SearchCache` (Redis).

Errors an implementation raises are those of :mod:`x0_rag.errors`: ``Unavailable`` for
a storage failure that may pass (the responder retries it), ``VersionNotApplied`` for
a wait that runs out. Anything else is a bug.
"""

from __future__ import annotations

from collections.abc import Sequence, Sized
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from x0_rag.domain.filters import MetadataFilter


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A hit's stored chunk and its document's metadata."""

    chunk_id: int
    document_id: str
    text: str
    start: int
    end: int
    metadata: dict[str, Any]


class Retrieval(Protocol):
    """Search reads on the source of truth."""

    async def collection_exists(self, name: str) -> bool:
        """Whether the collection exists."""
        ...

    async def hits(self, collection: str, ids: list[int]) -> dict[int, ChunkRow]:
        """The rows of those ``ids`` that still exist, by chunk id."""
        ...


class Indexes(Protocol):
    """This replica's vector and lexical indexes, fed by the index topic."""

    def collection(self, name: str) -> Sized | None:
        """The collection's index here, if it has one yet (its length: live vectors)."""
        ...

    def version_key(self, name: str) -> str:
        """What this replica applied to ``name``: changes whenever its index does."""
        ...

    async def search(
        self,
        name: str,
        vector: npt.ArrayLike,
        k: int,
        *,
        ef: int | None = None,
        where: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, cosine similarity)``, best first."""
        ...

    async def keyword(
        self, name: str, query: str, k: int, *, where: MetadataFilter | None = None
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, BM25 score)``, best first, for the keyword ``query``
        (:mod:`x0_rag.domain.keywords`); chunks sharing no word with it never rank."""
        ...

    async def wait_for(self, token: str, timeout: float) -> None:
        """Return once ingest version ``token`` is applied here (``VersionNotApplied``
        after ``timeout`` seconds)."""
        ...


class Embedder(Protocol):
    """Texts to unit vectors (one row per text)."""

    async def embed(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        """The embeddings of ``texts``."""
        ...


class SearchCache(Protocol):
    """Query embeddings and search results; an optimisation that may miss at any time."""

    def result_key(self, collection: str, versions: str, request: str) -> str:
        """Where a result is cached; ``request`` is the request's canonical JSON."""
        ...

    async def result(self, key: str) -> bytes | None:
        """A cached result's JSON, or None."""
        ...

    async def store_result(self, key: str, payload: bytes) -> None:
        """Cache a result's JSON."""
        ...

    async def embedding(self, query: str) -> npt.NDArray[np.float32] | None:
        """The cached embedding of ``query``, or None."""
        ...

    async def store_embedding(self, query: str, vector: npt.NDArray[np.float32]) -> None:
        """Cache ``query``'s embedding."""
        ...
