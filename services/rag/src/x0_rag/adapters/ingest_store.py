"""The writer's transactions, each applying one ingest message exactly once.

Every write is ONE transaction that also locks and advances the partition's row of
``rag.ingest_progress`` and records the message in ``rag.ingest_log``. A message at
or below the progress was applied before (a redelivery after a crash, or another
writer during a rebalance): the write is skipped (``None``) and the caller
re-publishes :meth:`IngestPartition.replay` instead, derived from the log row and
the rows as they are now. So rows are written once, and the event of every applied
message can be rebuilt even when the writer died before publishing it.

Refusals (unknown collection, bad document) are recorded the same way, so that a
redelivered refused message is refused again even if the collection exists by then.

The same transaction records the message's outcome (``rag.ingest_outcomes``, applied or
refused with its reason: :mod:`.outcomes`), which is what callers are told.

Chunk ids come from the identity column of ``rag.chunks``; ``removed`` lists the
chunk ids of the documents replaced or deleted.

An :class:`IngestPartition` writes for one tenant (the ingest message's); an upsert
that would take the tenant past ``max_documents`` is refused (``QuotaExceeded``) under
a per-tenant lock, so concurrent writers of other partitions cannot both pass.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import asyncpg
import numpy as np
import numpy.typing as npt

from x0_common.errors import X0Error
from x0_common.events.rag import Indexed, IndexedChunk, Refusal
from x0_common.principal import DEFAULT_TENANT
from x0_rag.adapters import outcomes
from x0_rag.adapters.rows import (
    ADVANCE_PROGRESS,
    COUNT_DOCUMENTS,
    COUNT_NEW_DOCUMENTS,
    DELETE_DOCUMENTS,
    DROP_DOCUMENTS,
    INSERT_CHUNKS,
    INSERT_LOG,
    LOCK_COLLECTION,
    LOCK_PROGRESS,
    LOCK_TENANT,
    PRUNE_LOG,
    REMOVE_CHUNKS_OF,
    SELECT_CHUNKS_WRITTEN_BY,
    SELECT_LOG,
    UPSERT_DOCUMENTS,
    IngestPosition,
    collection_not_found,
    database_errors,
    embedding_bytes,
    embedding_of,
    metadata_of,
)
from x0_rag.domain.ingest import UpsertPlan
from x0_rag.errors import ChunkingChanged, QuotaExceeded

Kind = Literal["upsert", "delete", "drop", "refused"]

# Log rows kept per partition behind the newest. A replay needs the row of a message
# applied but not yet committed in Kafka: the writer awaits each event before the
# next message, so that is one message, unless the group's offsets were reset.
LOG_KEEP: Final = 10_000


@dataclass(frozen=True, slots=True)
class Applied:
    """What one transaction did: the event to publish and how many documents it touched."""

    event: Indexed
    documents: int


def refusal_text(error: X0Error) -> str:
    """The ``Indexed.error`` of a refused message: its code and message."""
    return f"{error.code}: {error.message}"


class IngestPartition:
    """Transactions of one tenant on one connection that holds the partition's writer lock."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        topic: str,
        partition: int,
        *,
        tenant: str = DEFAULT_TENANT,
        max_documents: int | None = None,
    ) -> None:
        self._conn = conn
        self.topic = topic
        self.partition = partition
        self.tenant = tenant
        self._max_documents = max_documents

    async def _check_document_quota(
        self, conn: asyncpg.Connection, collection: str, ids: list[str]
    ) -> None:
        limit = self._max_documents
        if limit is None:
            return
        await conn.execute(LOCK_TENANT, self.tenant, "x0-rag-documents:")
        new = await conn.fetchval(COUNT_NEW_DOCUMENTS, self.tenant, collection, ids)
        if new and await conn.fetchval(COUNT_DOCUMENTS, self.tenant) + new > limit:
            raise QuotaExceeded("documents", limit)

    async def upsert(
        self,
        position: IngestPosition,
        collection: str,
        plan: UpsertPlan,
        vectors: npt.NDArray[np.float32],
    ) -> Applied | None:
        """Replace the plan's documents and their chunks; ``None`` if applied before.

        ``vectors[i]`` is the embedding of ``plan.texts[i]``. ``NotFound`` when the
        collection is gone, ``ChunkingChanged`` when it is not the one chunked for.
        """

        async def work(conn: asyncpg.Connection) -> tuple[Applied, list[int]]:
            tenant = self.tenant
            row = await conn.fetchrow(LOCK_COLLECTION, tenant, collection)
            if row is None:
                raise collection_not_found(collection)
            if (row["chunk_size"], row["chunk_overlap"]) != (plan.chunk_size, plan.chunk_overlap):
                raise ChunkingChanged(collection)
            ids = [document.id for document in plan.documents]
            await self._check_document_quota(conn, collection, ids)
            removed = [
                r["chunk_id"] for r in await conn.fetch(REMOVE_CHUNKS_OF, tenant, collection, ids)
            ]
            await conn.execute(
                UPSERT_DOCUMENTS,
                tenant,
                collection,
                ids,
                [document.text for document in plan.documents],
                [document.metadata_json for document in plan.documents],
                position.token,
            )
            owners = [(d, c) for d in plan.documents for c in d.chunks]
            inserted = await conn.fetch(
                INSERT_CHUNKS,
                tenant,
                collection,
                [d.id for d, _ in owners],
                [c.index for _, c in owners],
                [c.start for _, c in owners],
                [c.end for _, c in owners],
                [c.text for _, c in owners],
                [embedding_bytes(row) for row in vectors],
            )
            chunk_ids = {(r["document_id"], r["ordinal"]): r["chunk_id"] for r in inserted}
            upserted = [
                IndexedChunk(
                    chunk_id=chunk_ids[document.id, chunk.index],
                    document_id=document.id,
                    vector=vector.tolist(),
                    metadata=document.metadata,
                )
                for (document, chunk), vector in zip(owners, vectors, strict=True)
            ]
            event = Indexed(
                source=position.token,
                collection=collection,
                tenant=tenant,
                upserted=upserted,
                removed=sorted(removed),
            )
            return Applied(event, len(ids)), event.removed

        return await self._apply(position, collection, "upsert", work)

    async def delete(
        self, position: IngestPosition, collection: str, ids: Sequence[str]
    ) -> Applied | None:
        """Remove documents (missing ids are no-ops); ``None`` if applied before."""

        async def work(conn: asyncpg.Connection) -> tuple[Applied, list[int]]:
            tenant = self.tenant
            if await conn.fetchrow(LOCK_COLLECTION, tenant, collection) is None:
                raise collection_not_found(collection)
            unique = sorted(set(ids))
            removed = sorted(
                r["chunk_id"]
                for r in await conn.fetch(REMOVE_CHUNKS_OF, tenant, collection, unique)
            )
            deleted = await conn.fetch(DELETE_DOCUMENTS, tenant, collection, unique)
            event = Indexed(
                source=position.token, collection=collection, tenant=tenant, removed=removed
            )
            return Applied(event, len(deleted)), removed

        return await self._apply(position, collection, "delete", work)

    async def drop(self, position: IngestPosition, collection: str) -> Applied | None:
        """After a collection delete: remove every document ingested before this message
        (there are some only if the name was created again meanwhile); ``None`` if applied
        before. The event tells replicas to drop the collection's index."""

        async def work(conn: asyncpg.Connection) -> tuple[Applied, list[int]]:
            count = await conn.fetchval(DROP_DOCUMENTS, self.tenant, collection)
            event = Indexed(
                source=position.token,
                collection=collection,
                tenant=self.tenant,
                collection_deleted=True,
            )
            return Applied(event, int(count)), []

        return await self._apply(position, collection, "drop", work)

    async def refuse(
        self, position: IngestPosition, collection: str, error: X0Error
    ) -> Applied | None:
        """Record that the message was refused; ``None`` if it was applied before."""

        async def work(_: asyncpg.Connection) -> tuple[Applied, list[int]]:
            event = Indexed(
                source=position.token,
                collection=collection,
                tenant=self.tenant,
                error=refusal_text(error),
            )
            return Applied(event, 0), []

        refusal = outcomes.refusal_of(error)
        return await self._apply(position, collection, "refused", work, refusal=refusal)

    async def replay(
        self,
        position: IngestPosition,
        collection: str,
        kind: Literal["upsert", "delete", "drop"],
        document_ids: Sequence[str] = (),
    ) -> Indexed:
        """The event of an applied message, rebuilt: its log row (refusal, removed chunk
        ids) and those of its documents' chunks that are still its own."""
        async with (
            database_errors("ingest_replay"),
            self._conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            log = await self._conn.fetchrow(
                SELECT_LOG, position.topic, position.partition, position.offset
            )
            # The log says whose message it was; without it, the message's tenant.
            tenant = log["tenant"] if log is not None else self.tenant
            if log is not None and log["kind"] == "refused":
                return Indexed(
                    source=position.token,
                    collection=log["collection"],
                    tenant=tenant,
                    error=log["error"],
                )
            if (log["kind"] if log is not None else kind) == "drop":
                return Indexed(
                    source=position.token,
                    collection=collection,
                    tenant=tenant,
                    collection_deleted=True,
                )
            rows = await self._conn.fetch(
                SELECT_CHUNKS_WRITTEN_BY, tenant, collection, list(document_ids), position.token
            )
        upserted = [
            IndexedChunk(
                chunk_id=row["chunk_id"],
                document_id=row["document_id"],
                vector=embedding_of(row["embedding"]).tolist(),
                metadata=metadata_of(row["metadata"]),
            )
            for row in rows
        ]
        # Without its log row (pruned long ago) the removals were published long ago.
        removed = sorted(log["removed"]) if log is not None else []
        return Indexed(
            source=position.token,
            collection=collection,
            tenant=tenant,
            upserted=upserted,
            removed=removed,
        )

    async def _apply(
        self,
        position: IngestPosition,
        collection: str,
        kind: Kind,
        work: Callable[[asyncpg.Connection], Awaitable[tuple[Applied, list[int]]]],
        *,
        refusal: Refusal | None = None,
    ) -> Applied | None:
        """Run ``work`` in one transaction with the progress check, log row, outcome and
        advance."""
        assert (position.topic, position.partition) == (self.topic, self.partition)
        conn = self._conn
        async with database_errors(f"ingest_{kind}"), conn.transaction():
            next_offset = await conn.fetchval(LOCK_PROGRESS, self.topic, self.partition)
            if position.offset < next_offset:
                return None
            applied, removed = await work(conn)
            error = applied.event.error
            await conn.execute(
                INSERT_LOG,
                self.topic,
                self.partition,
                position.offset,
                self.tenant,
                collection,
                kind,
                removed,
                error,
            )
            await outcomes.record(
                conn, position, tenant=self.tenant, collection=collection, refusal=refusal
            )
            await conn.execute(PRUNE_LOG, self.topic, self.partition, position.offset - LOG_KEEP)
            await conn.execute(ADVANCE_PROGRESS, self.topic, self.partition, position.offset + 1)
        return applied
