"""Test helpers for the index side: a stand-in for the writer.

:class:`RagWriter` does what the ingest writer does, on the real PostgreSQL and the
real model: it writes collections, documents and chunks (embedded with
all-MiniLM-L6-v2) and ``rag.ingest_progress`` in one transaction, then publishes the
matching ``Indexed`` event to the test's index topic, on the partition of its
(simulated) ingest partition. Version tokens count per partition from 0.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from aiokafka import AIOKafkaProducer

import x0_rag
from x0_common.events.rag import Indexed, IndexedChunk, IndexParams
from x0_rag.adapters.embedder import Embedder

MIGRATIONS = Path(x0_rag.__file__).parent / "migrations"


@dataclass
class RagWriter:
    """Writes rows and publishes their ``Indexed`` events, as the writer would."""

    pool: asyncpg.Pool
    embedder: Embedder
    producer: AIOKafkaProducer
    index_topic: str
    ingest_topic: str
    next_offset: dict[int, int] = field(default_factory=dict)
    collections: set[str] = field(default_factory=set)

    async def create_collection(self, name: str, params: IndexParams | None = None) -> None:
        params = params or IndexParams()
        await self.pool.execute(
            "INSERT INTO rag.collections (name, m, ef_construction, ef, chunk_size, chunk_overlap)"
            " VALUES ($1, $2, $3, $4, 512, 50)",
            name,
            params.m,
            params.ef_construction,
            params.ef,
        )
        self.collections.add(name)

    async def new_collection(self) -> str:
        """A collection of this test's own, with the default parameters: its name."""
        name = f"t-{uuid.uuid4().hex[:12]}"
        await self.create_collection(name)
        return name

    def _take_offset(self, partition: int) -> int:
        offset = self.next_offset.get(partition, 0)
        self.next_offset[partition] = offset + 1
        return offset

    async def upsert(
        self,
        collection: str,
        document_id: str,
        chunks: list[str],
        metadata: dict[str, Any] | None = None,
        *,
        partition: int = 0,
        publish: bool = True,
    ) -> Indexed:
        """Replace a document by ``chunks`` (the text is their concatenation)."""
        metadata = metadata or {}
        offset = self._take_offset(partition)
        source = f"{partition}:{offset}"
        vectors = await asyncio.to_thread(self.embedder.embed, chunks)
        text = " ".join(chunks)
        upserted = []
        async with self.pool.acquire() as connection, connection.transaction():
            removed = await self._remove_chunks(connection, collection, document_id)
            await connection.execute(
                "INSERT INTO rag.documents (collection, id, text, metadata, version)"
                " VALUES ($1, $2, $3, $4::jsonb, $5) ON CONFLICT (tenant, collection, id) DO UPDATE"
                " SET text = EXCLUDED.text, metadata = EXCLUDED.metadata,"
                " version = EXCLUDED.version",
                collection,
                document_id,
                text,
                json.dumps(metadata),
                source,
            )
            start = 0
            for ordinal, (chunk, vector) in enumerate(zip(chunks, vectors, strict=True)):
                chunk_id = await connection.fetchval(
                    "INSERT INTO rag.chunks (collection, document_id, ordinal, start_offset,"
                    " end_offset, text, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    " RETURNING chunk_id",
                    collection,
                    document_id,
                    ordinal,
                    start,
                    start + len(chunk),
                    chunk,
                    np.asarray(vector, dtype="<f4").tobytes(),
                )
                upserted.append(
                    IndexedChunk(
                        chunk_id=chunk_id,
                        document_id=document_id,
                        vector=[float(x) for x in vector],
                        metadata=metadata,
                    )
                )
                start += len(chunk) + 1
            await self._progress(connection, partition, offset)
        event = Indexed(source=source, collection=collection, upserted=upserted, removed=removed)
        if publish:
            await self.publish(event)
        return event

    async def delete_document(
        self, collection: str, document_id: str, *, partition: int = 0
    ) -> Indexed:
        offset = self._take_offset(partition)
        async with self.pool.acquire() as connection, connection.transaction():
            removed = await self._remove_chunks(connection, collection, document_id)
            await connection.execute(
                "DELETE FROM rag.documents WHERE collection = $1 AND id = $2",
                collection,
                document_id,
            )
            await self._progress(connection, partition, offset)
        event = Indexed(source=f"{partition}:{offset}", collection=collection, removed=removed)
        await self.publish(event)
        return event

    async def drop_collection(self, collection: str, *, partition: int = 0) -> Indexed:
        offset = self._take_offset(partition)
        async with self.pool.acquire() as connection, connection.transaction():
            await connection.execute("DELETE FROM rag.collections WHERE name = $1", collection)
            await self._progress(connection, partition, offset)
        event = Indexed(
            source=f"{partition}:{offset}", collection=collection, collection_deleted=True
        )
        await self.publish(event)
        return event

    async def refuse(self, collection: str, *, partition: int = 0) -> Indexed:
        """An ingest the writer refused: nothing changes, the version advances."""
        offset = self._take_offset(partition)
        async with self.pool.acquire() as connection, connection.transaction():
            await self._progress(connection, partition, offset)
        event = Indexed(source=f"{partition}:{offset}", collection=collection, error="refused")
        await self.publish(event)
        return event

    async def publish(self, event: Indexed) -> None:
        """Publish ``event`` on the index partition of its ingest partition."""
        partition = int(event.source.split(":", 1)[0])
        await self.producer.send_and_wait(
            self.index_topic,
            event.model_dump_json().encode(),
            key=event.collection.encode(),
            partition=partition,
        )

    async def chunk_ids(self, collection: str) -> set[int]:
        rows = await self.pool.fetch(
            "SELECT chunk_id FROM rag.chunks WHERE collection = $1", collection
        )
        return {row["chunk_id"] for row in rows}

    async def cleanup(self) -> None:
        await self.pool.execute(
            "DELETE FROM rag.collections WHERE name = ANY($1::text[])", list(self.collections)
        )
        await self.pool.execute(
            "DELETE FROM rag.ingest_progress WHERE topic = $1", self.ingest_topic
        )

    @staticmethod
    async def _remove_chunks(
        connection: asyncpg.Connection, collection: str, document_id: str
    ) -> list[int]:
        rows = await connection.fetch(
            "DELETE FROM rag.chunks WHERE collection = $1 AND document_id = $2 RETURNING chunk_id",
            collection,
            document_id,
        )
        return sorted(row["chunk_id"] for row in rows)

    async def _progress(self, connection: asyncpg.Connection, partition: int, offset: int) -> None:
        await connection.execute(
            "INSERT INTO rag.ingest_progress (topic, partition, next_offset) VALUES ($1, $2, $3)"
            " ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset",
            self.ingest_topic,
            partition,
            offset + 1,
        )
