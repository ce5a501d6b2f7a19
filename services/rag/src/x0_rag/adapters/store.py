"""Collections and documents in PostgreSQL (schema ``rag``), the source of truth.

- Create is idempotent: ``INSERT ... ON CONFLICT DO NOTHING``; when the name is
  taken, the same parameters answer with the existing collection, others with
  ``Conflict`` (409). Concurrent creates of one name have one winner.
- Delete removes the collection with its documents and chunks (``ON DELETE
  CASCADE``) and says whether there was one. Telling the replicas is the caller's
  part (:mod:`x0_rag.handlers.collections`).
- Reads of a document and its chunks share one snapshot.
- Ingest writes go through :meth:`RagStore.ingest_partition`, which serialises the
  writers of one ingest partition (:mod:`.ingest_store`).
- What became of an ingest message: :meth:`RagStore.ingest_outcome` (:mod:`.outcomes`).
- Tenancy: a store is bound to one tenant (:meth:`RagStore.of`) and every statement
  names it, so another tenant's collection is ``NotFound`` (404), never a 403. Creates
  take a per-tenant lock and count the tenant's collections under it
  (``max_collections``); upserts count its documents (``max_documents``).

Transient database failures become ``Unavailable`` (the responder retries them).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import asyncpg

from x0_common.events.rag import (
    ChunkRef,
    CollectionInfo,
    CreateCollectionRequest,
    DocumentResult,
    IngestOutcome,
)
from x0_common.principal import DEFAULT_TENANT
from x0_rag.adapters import outcomes
from x0_rag.adapters.ingest_store import IngestPartition
from x0_rag.adapters.rows import (
    CHUNKING_OF,
    COLLECTION_EXISTS,
    COUNT_COLLECTIONS,
    DELETE_COLLECTION,
    INSERT_COLLECTION,
    LOCK_PARTITION,
    LOCK_TENANT,
    READ_PROGRESS,
    SELECT_CHUNK_REFS,
    SELECT_COLLECTIONS,
    SELECT_DOCUMENT,
    UNLOCK_PARTITION,
    IngestPosition,
    collection_info,
    collection_not_found,
    database_errors,
    metadata_of,
)
from x0_rag.errors import Conflict, InvalidInput, NotFound, QuotaExceeded, Unavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Quotas:
    """Per tenant: collections and documents at most (None: no limit)."""

    max_collections: int | None = None
    max_documents: int | None = None


class RagStore:
    """One tenant's collections and documents in the ``rag`` schema, on an asyncpg pool."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        tenant: str = DEFAULT_TENANT,
        quotas: Quotas | None = None,
    ) -> None:
        self.pool = pool
        self.tenant = tenant
        self.quotas = quotas or Quotas()

    def of(self, tenant: str) -> RagStore:
        """The same store, bound to ``tenant``'s collections."""
        return RagStore(self.pool, tenant=tenant, quotas=self.quotas)

    # -- collections ------------------------------------------------------------------

    async def create_collection(
        self, request: CreateCollectionRequest
    ) -> tuple[CollectionInfo, bool]:
        """The collection, and whether this call created it (``False``: it existed, same
        parameters). ``Conflict`` when it exists with other parameters."""
        if request.chunk_overlap >= request.chunk_size:
            raise InvalidInput(
                "chunk_overlap must be smaller than chunk_size",
                details={"chunk_size": request.chunk_size, "chunk_overlap": request.chunk_overlap},
            )
        wanted = (
            request.index.m,
            request.index.ef_construction,
            request.index.ef,
            request.chunk_size,
            request.chunk_overlap,
        )
        async with (
            database_errors("collection_create"),
            self.pool.acquire() as conn,
            conn.transaction(),
        ):
            await self._check_collection_quota(conn, request.name)
            row = await conn.fetchrow(INSERT_COLLECTION, self.tenant, request.name, *wanted)
            if row is not None:
                return collection_info(row), True
            existing = await conn.fetchrow(SELECT_COLLECTIONS, self.tenant, request.name)
        if existing is None:
            # The row that conflicted went away between the two statements; try again.
            raise Unavailable(
                "concurrent change to the collection, retry", details={"reason": "race"}
            )
        info = collection_info(existing)
        have = (
            info.index.m,
            info.index.ef_construction,
            info.index.ef,
            info.chunk_size,
            info.chunk_overlap,
        )
        if have != wanted:
            raise Conflict(
                f"a collection named {request.name!r} exists with other parameters",
                details={
                    "reason": "collection_exists",
                    "name": request.name,
                    "existing": info.model_dump(
                        mode="json", include={"index", "chunk_size", "chunk_overlap"}
                    ),
                },
            )
        return info, False

    async def _check_collection_quota(self, conn: asyncpg.Connection, name: str) -> None:
        """Under the tenant's lock (until the transaction ends): refuse a new name once
        the tenant holds ``max_collections``; an existing one answers as before."""
        limit = self.quotas.max_collections
        if limit is None:
            return
        await conn.execute(LOCK_TENANT, self.tenant, "x0-rag-collections:")
        if await conn.fetchval(COLLECTION_EXISTS, self.tenant, name) is not None:
            return
        if await conn.fetchval(COUNT_COLLECTIONS, self.tenant) >= limit:
            raise QuotaExceeded("collections", limit)

    async def collection(self, name: str) -> CollectionInfo:
        """One collection with its document and chunk counts; ``NotFound`` if none."""
        async with database_errors("collection_get"):
            row = await self.pool.fetchrow(SELECT_COLLECTIONS, self.tenant, name)
        if row is None:
            raise collection_not_found(name)
        return collection_info(row)

    async def collections(self) -> list[CollectionInfo]:
        """Every collection, by name."""
        async with database_errors("collection_list"):
            rows = await self.pool.fetch(SELECT_COLLECTIONS, self.tenant, None)
        return [collection_info(row) for row in rows]

    async def delete_collection(self, name: str) -> bool:
        """Remove the collection and everything in it; ``False`` when there was none."""
        async with database_errors("collection_delete"):
            return await self.pool.fetchval(DELETE_COLLECTION, self.tenant, name) is not None

    async def chunking(self, name: str) -> tuple[int, int]:
        """The collection's ``(chunk_size, chunk_overlap)``; ``NotFound`` if none."""
        async with database_errors("collection_chunking"):
            row = await self.pool.fetchrow(CHUNKING_OF, self.tenant, name)
        if row is None:
            raise collection_not_found(name)
        return row["chunk_size"], row["chunk_overlap"]

    # -- documents --------------------------------------------------------------------

    async def document(self, collection: str, document_id: str) -> DocumentResult:
        """A stored document with its chunks' spans; ``NotFound`` for it or its collection."""
        async with (
            database_errors("document_get"),
            self.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            row = await conn.fetchrow(SELECT_DOCUMENT, self.tenant, collection, document_id)
            if row is None:
                if await conn.fetchval(COLLECTION_EXISTS, self.tenant, collection) is None:
                    raise collection_not_found(collection)
                raise NotFound(
                    f"no document {document_id!r} in collection {collection!r}",
                    details={
                        "reason": "document_not_found",
                        "collection": collection,
                        "id": document_id,
                    },
                )
            chunks = await conn.fetch(SELECT_CHUNK_REFS, self.tenant, collection, document_id)
        return DocumentResult(
            id=row["id"],
            text=row["text"],
            metadata=metadata_of(row["metadata"]),
            chunks=[
                ChunkRef(chunk_id=c["chunk_id"], start=c["start_offset"], end=c["end_offset"])
                for c in chunks
            ],
            version=row["version"],
        )

    # -- ingest -----------------------------------------------------------------------

    async def applied(self, position: IngestPosition) -> bool:
        """Whether the ingest message at ``position`` was applied (a cheap unlocked read)."""
        async with database_errors("ingest_progress"):
            next_offset = await self.pool.fetchval(
                READ_PROGRESS, position.topic, position.partition
            )
        return next_offset is not None and position.offset < next_offset

    async def ingest_outcome(self, position: IngestPosition, collection: str) -> IngestOutcome:
        """What became of the ingest message at ``position`` in the tenant's ``collection``
        (:mod:`.outcomes`); ``NotFound`` (reason ``outcome_unknown``) when nothing is known:
        another collection's or tenant's message, or older than the retention."""
        outcome = await outcomes.read(
            self.pool, position, tenant=self.tenant, collection=collection
        )
        if outcome is None:
            raise NotFound(
                f"no outcome of version {position.token} in collection {collection!r}",
                details={
                    "reason": "outcome_unknown",
                    "version": position.token,
                    "retention_days": outcomes.RETENTION_DAYS,
                },
            )
        return outcome

    @asynccontextmanager
    async def ingest_partition(self, topic: str, partition: int) -> AsyncIterator[IngestPartition]:
        """Writes to one ingest partition, alone: no other writer of it (another replica
        during a rebalance) runs until the block ends. Publish the index event inside it."""
        async with AsyncExitStack() as stack:
            async with database_errors("ingest_lock"):
                conn = await stack.enter_async_context(self.pool.acquire())
                await conn.execute(LOCK_PARTITION, topic, partition)
            try:
                yield IngestPartition(
                    conn,
                    topic,
                    partition,
                    tenant=self.tenant,
                    max_documents=self.quotas.max_documents,
                )
            finally:
                try:
                    await conn.execute(UNLOCK_PARTITION, topic, partition)
                except Exception:  # noqa: BLE001 - the pool's reset unlocks all, or the session ends
                    logger.warning("could not release the ingest partition lock at once")
