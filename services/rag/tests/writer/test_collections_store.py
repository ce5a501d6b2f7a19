"""Collections and documents in the real PostgreSQL: idempotent create, conflicts, counts,
cascading delete, document read-back with chunk spans."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from x0_common.errors import Conflict
from x0_common.events.rag import CreateCollectionRequest, Document, IndexParams, UpsertDocuments
from x0_rag.adapters.store import RagStore
from x0_rag.errors import InvalidInput, NotFound

from .support import WriterUnderTest, at

pytestmark = pytest.mark.integration

TEXT = (
    "Kafka keeps an ordered log per partition. Consumers in one group share partitions.\n\n"
    "PostgreSQL is the source of truth for the rag service: documents, chunks and vectors. "
    "The hnswlib indexes of every replica are derived from it and can be rebuilt at any time."
)


async def test_create_is_idempotent_with_the_same_parameters(
    pg_pool: asyncpg.Pool, collection: str
) -> None:
    store = RagStore(pg_pool)
    request = CreateCollectionRequest(
        name=collection, index=IndexParams(m=8), chunk_size=128, chunk_overlap=16
    )
    created, was_new = await store.create_collection(request)
    again, again_new = await store.create_collection(request)

    assert (was_new, again_new) == (True, False)
    assert again == created
    assert (created.index.m, created.chunk_size, created.chunk_overlap) == (8, 128, 16)
    assert (created.documents, created.chunks) == (0, 0)
    assert await store.collection(collection) == created
    assert created in await store.collections()


async def test_create_with_other_parameters_conflicts(
    pg_pool: asyncpg.Pool, collection: str
) -> None:
    store = RagStore(pg_pool)
    await store.create_collection(CreateCollectionRequest(name=collection))
    with pytest.raises(Conflict) as raised:
        await store.create_collection(CreateCollectionRequest(name=collection, chunk_size=256))
    assert raised.value.details["reason"] == "collection_exists"
    assert raised.value.details["existing"]["chunk_size"] == 512
    assert (await store.collection(collection)).chunk_size == 512


async def test_concurrent_creates_have_one_winner(pg_pool: asyncpg.Pool, collection: str) -> None:
    store = RagStore(pg_pool)
    request = CreateCollectionRequest(name=collection)
    outcomes = await asyncio.gather(*(store.create_collection(request) for _ in range(8)))
    assert sorted(created for _, created in outcomes) == [False] * 7 + [True]
    assert len({info.created_at for info, _ in outcomes}) == 1


async def test_overlap_must_be_smaller_than_the_chunk(
    pg_pool: asyncpg.Pool, collection: str
) -> None:
    store = RagStore(pg_pool)
    with pytest.raises(InvalidInput):
        await store.create_collection(
            CreateCollectionRequest(name=collection, chunk_size=64, chunk_overlap=64)
        )
    with pytest.raises(NotFound):
        await store.collection(collection)


async def test_unknown_collection_is_not_found(pg_pool: asyncpg.Pool, collection: str) -> None:
    store = RagStore(pg_pool)
    with pytest.raises(NotFound) as raised:
        await store.collection(collection)
    assert raised.value.details == {"reason": "collection_not_found", "name": collection}
    with pytest.raises(NotFound) as raised:
        await store.document(collection, "doc")
    assert raised.value.details["reason"] == "collection_not_found"
    assert await store.delete_collection(collection) is False


async def test_document_reads_back_with_its_chunk_spans(
    writer: WriterUnderTest, collection: str
) -> None:
    store = writer.store
    await store.create_collection(
        CreateCollectionRequest(name=collection, chunk_size=96, chunk_overlap=20)
    )
    metadata = {"lang": "en", "tags": ["kafka", "postgres"], "stars": 4.5, "note": "naïve ✓"}
    request = UpsertDocuments(
        collection=collection, documents=[Document(id="doc/1", text=TEXT, metadata=metadata)]
    )
    await writer.writer.upsert(request, at(1, 7))

    document = await store.document(collection, "doc/1")
    assert (document.id, document.text, document.metadata, document.version) == (
        "doc/1",
        TEXT,
        metadata,
        "1:7",
    )
    assert len(document.chunks) > 2
    assert [c.chunk_id for c in document.chunks] == sorted(c.chunk_id for c in document.chunks)
    stored = await store.pool.fetch(
        "SELECT chunk_id, text FROM rag.chunks WHERE collection = $1 ORDER BY ordinal", collection
    )
    assert [(c.chunk_id, TEXT[c.start : c.end]) for c in document.chunks] == [
        (row["chunk_id"], row["text"]) for row in stored
    ]
    info = await store.collection(collection)
    assert (info.documents, info.chunks) == (1, len(document.chunks))

    with pytest.raises(NotFound) as raised:
        await store.document(collection, "doc/2")
    assert raised.value.details["reason"] == "document_not_found"


async def test_delete_removes_everything_of_the_collection(
    writer: WriterUnderTest, collection: str
) -> None:
    store = writer.store
    await store.create_collection(CreateCollectionRequest(name=collection))
    documents = [Document(id=f"d{i}", text=f"{TEXT} ({i})") for i in range(3)]
    await writer.writer.upsert(
        UpsertDocuments(collection=collection, documents=documents), at(0, 1)
    )
    count = (
        "SELECT (SELECT count(*) FROM rag.documents WHERE collection = $1)"
        " + (SELECT count(*) FROM rag.chunks WHERE collection = $1)"
    )
    assert await store.pool.fetchval(count, collection) > 3

    assert await store.delete_collection(collection) is True
    assert await store.pool.fetchval(count, collection) == 0
    assert await store.delete_collection(collection) is False
    with pytest.raises(NotFound):
        await store.collection(collection)
