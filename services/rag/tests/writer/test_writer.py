"""The ingest writer on the real PostgreSQL, Kafka and model: what it stores, what it
publishes, and that each message is applied once, whatever is redelivered."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import pytest
from faststream.kafka import KafkaBroker

from x0_common.events.rag import (
    MAX_METADATA_BYTES,
    CollectionNameRequest,
    CreateCollectionRequest,
    DeleteDocuments,
    Document,
    Indexed,
    UpsertDocuments,
)
from x0_rag.adapters.embedder import DynamicBatcher, Embedder
from x0_rag.adapters.index_events import IndexEvents
from x0_rag.adapters.rows import IngestPosition, embedding_of
from x0_rag.domain.chunking import chunk_text
from x0_rag.domain.ingest import plan_upsert
from x0_rag.errors import InvalidInput, NotFound, TooLarge
from x0_rag.handlers.writer import IngestWriter

from .support import EventLog, WriterUnderTest, at

pytestmark = pytest.mark.integration

PARAGRAPH = (
    "The writer chunks each document, embeds every chunk of the message in one model call, "
    "and stores documents, chunks and vectors in one transaction with its progress. "
)
LONG = PARAGRAPH * 6  # about 1,000 characters: several chunks of 256


async def _create(writer: WriterUnderTest, name: str, size: int = 256, overlap: int = 32) -> None:
    await writer.store.create_collection(
        CreateCollectionRequest(name=name, chunk_size=size, chunk_overlap=overlap)
    )


async def _chunks(pool: asyncpg.Pool, collection: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT chunk_id, document_id, ordinal, start_offset, end_offset, text, embedding"
        " FROM rag.chunks WHERE collection = $1 ORDER BY document_id, ordinal",
        collection,
    )


async def _progress(writer: WriterUnderTest, partition: int) -> int | None:
    return await writer.store.pool.fetchval(
        "SELECT next_offset FROM rag.ingest_progress WHERE topic = $1 AND partition = $2",
        writer.topics.ingest,
        partition,
    )


async def test_upsert_stores_chunks_and_publishes_them(
    writer: WriterUnderTest, collection: str, index_log: EventLog, embedder: Embedder
) -> None:
    await _create(writer, collection)
    documents = [
        Document(id="a", text=LONG, metadata={"lang": "en"}),
        Document(id="b", text="A short one about hnswlib.", metadata={"lang": "de"}),
    ]
    await writer.writer.upsert(
        UpsertDocuments(collection=collection, documents=documents), at(1, 40)
    )

    rows = await _chunks(writer.store.pool, collection)
    expected = chunk_text(LONG, size=256, overlap=32)
    assert [(r["document_id"], r["ordinal"]) for r in rows] == [
        *(("a", c.index) for c in expected),
        ("b", 0),
    ]
    for row in rows:
        source = LONG if row["document_id"] == "a" else documents[1].text
        assert source[row["start_offset"] : row["end_offset"]] == row["text"]
    # The stored vectors are the model's embeddings of the chunk texts.
    stored = np.stack([embedding_of(r["embedding"]) for r in rows])
    np.testing.assert_allclose(stored, embedder.embed([r["text"] for r in rows]), atol=1e-5)

    (event,) = await index_log.until(lambda records: len(records) >= 1)
    assert event.partition == 1  # the index partition is the ingest partition
    assert event.key == collection.encode()
    indexed = index_log.events()[0]
    assert (indexed.source, indexed.collection, indexed.removed, indexed.error) == (
        "1:40",
        collection,
        [],
        None,
    )
    assert indexed.final
    assert not indexed.collection_deleted
    by_id = {r["chunk_id"]: r for r in rows}
    assert sorted(c.chunk_id for c in indexed.upserted) == sorted(by_id)
    for chunk in indexed.upserted:
        row = by_id[chunk.chunk_id]
        assert chunk.document_id == row["document_id"]
        assert chunk.metadata == {"lang": "en" if row["document_id"] == "a" else "de"}
        assert np.array_equal(
            np.asarray(chunk.vector, dtype=np.float32), embedding_of(row["embedding"])
        )

    assert await _progress(writer, 1) == 41
    assert (
        writer.sample("x0_rag_ingested_documents_total", collection=collection, action="upsert")
        == 2
    )
    assert writer.sample("x0_rag_ingested_chunks_total", collection=collection) == len(rows)


def one_document(collection: str, document_id: str, text: str) -> UpsertDocuments:
    """An upsert of one document, without metadata."""
    return UpsertDocuments(collection=collection, documents=[Document(id=document_id, text=text)])


async def test_upsert_replaces_a_document_and_its_chunks(
    writer: WriterUnderTest, collection: str, index_log: EventLog
) -> None:
    await _create(writer, collection)
    upsert = writer.writer.upsert
    await upsert(one_document(collection, "a", LONG), at(0, 1))
    old = {r["chunk_id"] for r in await _chunks(writer.store.pool, collection)}
    shorter = PARAGRAPH * 2
    await upsert(one_document(collection, "a", shorter), at(0, 2))

    rows = await _chunks(writer.store.pool, collection)
    assert [r["text"] for r in rows] == [c.text for c in chunk_text(shorter, size=256, overlap=32)]
    assert not old & {r["chunk_id"] for r in rows}  # new ids, never reused
    document = await writer.store.document(collection, "a")
    assert (document.text, document.version) == (shorter, "0:2")

    await index_log.until(lambda records: len(records) >= 2)
    first, second = index_log.events()
    assert sorted(second.removed) == sorted(old) == sorted(c.chunk_id for c in first.upserted)
    assert sorted(c.chunk_id for c in second.upserted) == [r["chunk_id"] for r in rows]


async def test_duplicate_ids_in_one_message_last_wins(
    writer: WriterUnderTest, collection: str
) -> None:
    await _create(writer, collection)
    documents = [
        Document(id="x", text="first version of x"),
        Document(id="y", text="only version of y"),
        Document(id="x", text="second version of x", metadata={"v": 2}),
    ]
    await writer.writer.upsert(
        UpsertDocuments(collection=collection, documents=documents), at(0, 5)
    )
    document = await writer.store.document(collection, "x")
    assert (document.text, document.metadata) == ("second version of x", {"v": 2})
    assert [r["document_id"] for r in await _chunks(writer.store.pool, collection)] == ["x", "y"]


async def test_delete_removes_rows_and_announces_the_chunk_ids(
    writer: WriterUnderTest, collection: str, index_log: EventLog
) -> None:
    await _create(writer, collection)
    documents = [Document(id=name, text=LONG) for name in ("a", "b")]
    await writer.writer.upsert(
        UpsertDocuments(collection=collection, documents=documents), at(0, 1)
    )
    of_a = [
        r["chunk_id"]
        for r in await _chunks(writer.store.pool, collection)
        if r["document_id"] == "a"
    ]

    await writer.writer.delete(
        DeleteDocuments(collection=collection, ids=["a", "missing", "a"]), at(0, 2)
    )

    assert {r["document_id"] for r in await _chunks(writer.store.pool, collection)} == {"b"}
    with pytest.raises(NotFound):
        await writer.store.document(collection, "a")
    await index_log.until(lambda records: len(records) >= 2)
    deleted = index_log.events()[1]
    assert (deleted.source, deleted.removed, deleted.upserted) == ("0:2", sorted(of_a), [])
    assert (
        writer.sample("x0_rag_ingested_documents_total", collection=collection, action="delete")
        == 1
    )


async def test_a_redelivered_message_is_not_written_again_but_published_again(
    writer: WriterUnderTest, collection: str, index_log: EventLog
) -> None:
    await _create(writer, collection)
    first = one_document(collection, "a", LONG)
    await writer.writer.upsert(first, at(0, 10))
    replaced = one_document(collection, "a", PARAGRAPH)
    await writer.writer.upsert(replaced, at(0, 11))
    before = await _chunks(writer.store.pool, collection)
    chunks_counted = writer.sample("x0_rag_ingested_chunks_total", collection=collection)

    await writer.writer.upsert(replaced, at(0, 11))  # the crash-and-redeliver case
    await writer.writer.upsert(first, at(0, 10))  # an even older one (group offsets reset)

    assert await _chunks(writer.store.pool, collection) == before
    assert await _progress(writer, 0) == 12
    assert writer.sample("x0_rag_ingested_chunks_total", collection=collection) == chunks_counted
    await index_log.until(lambda records: len(records) >= 4)
    original_10, original_11, again_11, again_10 = index_log.events()
    # The same event again, rebuilt from the log row and the rows as they are now.
    assert again_11 == original_11
    # Message 10's document has been replaced since: only its removals remain to tell.
    assert (again_10.source, again_10.upserted, again_10.removed) == (
        "0:10",
        [],
        original_10.removed,
    )


async def test_a_crash_between_commit_and_publish_is_repaired_by_the_redelivery(
    writer: WriterUnderTest, collection: str, index_log: EventLog, batcher: DynamicBatcher
) -> None:
    await _create(writer, collection)
    await writer.writer.upsert(one_document(collection, "a", LONG), at(0, 1))
    old = sorted(r["chunk_id"] for r in await _chunks(writer.store.pool, collection))
    # The transaction commits, then the worker dies before its event is published.
    request = one_document(collection, "a", PARAGRAPH)
    plan = plan_upsert(request.documents, size=256, overlap=32)
    vectors = await batcher.embed(plan.texts)
    position = IngestPosition(writer.topics.ingest, 0, 2)
    async with writer.store.ingest_partition(position.topic, 0) as writes:
        applied = await writes.upsert(position, collection, plan, vectors)
    assert applied is not None
    assert len(await index_log.settle(0.5)) == 1

    await writer.writer.upsert(request, at(0, 2))  # redelivered: nothing uncommitted

    await index_log.until(lambda records: len(records) >= 2)
    repaired = index_log.events()[1]
    assert repaired == applied.event
    assert repaired.removed == old
    assert sorted(c.chunk_id for c in repaired.upserted) == [
        r["chunk_id"] for r in await _chunks(writer.store.pool, collection)
    ]


async def test_an_unknown_collection_is_refused_and_replicas_still_move_on(
    writer: WriterUnderTest, collection: str, index_log: EventLog
) -> None:
    request = one_document(collection, "a", LONG)
    with pytest.raises(NotFound):
        await writer.writer.upsert(request, at(1, 3))
    await index_log.until(lambda records: len(records) >= 1)
    refused = index_log.events()[0]
    assert (refused.source, refused.collection, refused.upserted) == ("1:3", collection, [])
    assert refused.error is not None
    assert refused.error.startswith("not_found:")
    assert await _progress(writer, 1) == 4

    # Redelivered after the collection appeared: refused again, as the first time.
    await _create(writer, collection)
    await writer.writer.upsert(request, at(1, 3))
    await index_log.until(lambda records: len(records) >= 2)
    assert index_log.events()[1] == refused
    assert await _chunks(writer.store.pool, collection) == []

    with pytest.raises(NotFound):
        await writer.writer.delete(
            DeleteDocuments(collection="t-nothing-here", ids=["a"]), at(1, 4)
        )
    await index_log.until(lambda records: len(records) >= 3)
    assert index_log.events()[2].error is not None


@pytest.mark.parametrize(
    ("document", "error"),
    # Built without the model's checks: an upstream producer's message reaches the writer
    # as it was published, and the writer must refuse it on its own.
    [
        (Document.model_construct(id="blank", text=" \n\t ", metadata={}), InvalidInput),
        (Document.model_construct(id="nul", text="a NUL \x00 in text", metadata={}), InvalidInput),
        (
            Document.model_construct(id="nul-meta", text="fine", metadata={"k": "a\x00b"}),
            InvalidInput,
        ),
        (
            Document.model_construct(id="nan", text="fine", metadata={"score": float("nan")}),
            InvalidInput,
        ),
        (
            Document.model_construct(
                id="big", text="fine", metadata={"blob": "x" * MAX_METADATA_BYTES}
            ),
            TooLarge,
        ),
    ],
)
async def test_an_unstorable_document_refuses_the_whole_message(
    writer: WriterUnderTest,
    collection: str,
    index_log: EventLog,
    document: Document,
    error: type[Exception],
) -> None:
    await _create(writer, collection)
    request = UpsertDocuments(
        collection=collection, documents=[Document(id="good", text=LONG), document]
    )
    with pytest.raises(error):
        await writer.writer.upsert(request, at(0, 9))
    assert await _chunks(writer.store.pool, collection) == []
    await index_log.until(lambda records: len(records) >= 1)
    event = index_log.events()[0]
    assert event.error is not None
    assert event.upserted == []
    assert document.id in event.error


async def test_a_failed_write_leaves_nothing_half_done(
    writer: WriterUnderTest, collection: str
) -> None:
    await _create(writer, collection)
    await writer.writer.upsert(one_document(collection, "a", LONG), at(0, 1))
    before = await _chunks(writer.store.pool, collection)
    log_rows = "SELECT count(*) FROM rag.ingest_log WHERE topic = $1"
    logged = await writer.store.pool.fetchval(log_rows, writer.topics.ingest)

    # Replacing "a" fails on the last statement (a vector of the wrong size breaks the
    # column's CHECK) after the old chunks were deleted and the document updated.
    plan = plan_upsert(
        [Document(id="a", text=PARAGRAPH), Document(id="b", text=PARAGRAPH)], size=256, overlap=32
    )
    vectors = np.ones((len(plan.texts), 383), dtype=np.float32)
    position = IngestPosition(writer.topics.ingest, 0, 2)
    async with writer.store.ingest_partition(position.topic, 0) as writes:
        with pytest.raises(asyncpg.CheckViolationError):
            await writes.upsert(position, collection, plan, vectors)

    assert await _chunks(writer.store.pool, collection) == before
    assert (await writer.store.document(collection, "a")).text == LONG
    with pytest.raises(NotFound):
        await writer.store.document(collection, "b")
    assert await _progress(writer, 0) == 2
    assert await writer.store.pool.fetchval(log_rows, writer.topics.ingest) == logged


async def test_a_collection_dropped_marker_removes_what_earlier_ingests_left(
    writer: WriterUnderTest, collection: str, index_log: EventLog
) -> None:
    await _create(writer, collection)
    upsert = writer.writer.upsert
    await upsert(one_document(collection, "old", LONG), at(0, 1))
    # Deleted, and created anew before an ingest queued for the old one was applied.
    await writer.store.delete_collection(collection)
    await _create(writer, collection, size=128, overlap=0)
    queued = one_document(collection, "queued", LONG)
    await upsert(queued, at(0, 2))
    assert {r["document_id"] for r in await _chunks(writer.store.pool, collection)} == {"queued"}

    await writer.writer.drop(CollectionNameRequest(name=collection), at(0, 3))  # the marker
    fresh = one_document(collection, "new", PARAGRAPH)
    await upsert(fresh, at(0, 4))

    assert {r["document_id"] for r in await _chunks(writer.store.pool, collection)} == {"new"}
    await index_log.until(lambda records: len(records) >= 4)
    dropped = index_log.events()[2]
    assert (dropped.source, dropped.collection, dropped.collection_deleted) == (
        "0:3",
        collection,
        True,
    )
    assert (
        writer.sample("x0_rag_ingested_documents_total", collection=collection, action="drop") == 1
    )

    await writer.writer.drop(CollectionNameRequest(name=collection), at(0, 3))  # redelivered
    await index_log.until(lambda records: len(records) >= 5)
    assert index_log.events()[4] == dropped
    assert {r["document_id"] for r in await _chunks(writer.store.pool, collection)} == {"new"}


async def test_a_large_message_is_published_in_parts_that_each_fit(
    writer: WriterUnderTest,
    collection: str,
    index_log: EventLog,
    batcher: DynamicBatcher,
    broker: KafkaBroker,
) -> None:
    await _create(writer, collection)
    events_of_64k = IndexEvents(broker, writer.topics.index, max_bytes=64 * 1024)
    small = IngestWriter(
        writer.store, batcher.embed, events_of_64k, writer.metrics, topic=writer.topics.ingest
    )
    documents = [Document(id=f"d{i}", text=LONG, metadata={"i": i}) for i in range(6)]
    await small.upsert(UpsertDocuments(collection=collection, documents=documents), at(1, 1))
    await small.delete(
        DeleteDocuments(collection=collection, ids=[d.id for d in documents]), at(1, 2)
    )

    rows = await index_log.until(
        lambda records: sum(Indexed.model_validate_json(r.value).final for r in records) >= 2
    )
    events = index_log.events()
    assert all(len(record.value) <= 64 * 1024 for record in rows)
    upserts = [e for e in events if e.source == "1:1"]
    deletes = [e for e in events if e.source == "1:2"]
    assert len(upserts) > 2
    assert [e.final for e in upserts] == [False] * (len(upserts) - 1) + [True]
    assert [e.source for e in events] == ["1:1"] * len(upserts) + ["1:2"] * len(deletes)
    chunk_ids = [c.chunk_id for e in upserts for c in e.upserted]
    assert len(chunk_ids) == len(set(chunk_ids)) == 6 * len(chunk_text(LONG, size=256, overlap=32))
    assert sorted(i for e in deletes for i in e.removed) == sorted(chunk_ids)


async def test_two_writers_on_one_message_write_it_once(
    writer: WriterUnderTest,
    collection: str,
    index_log: EventLog,
    batcher: DynamicBatcher,
    broker: KafkaBroker,
) -> None:
    # During a rebalance the old and the new owner of a partition may both handle a message.
    await _create(writer, collection)
    other = IngestWriter(
        writer.store,
        batcher.embed,
        IndexEvents(broker, writer.topics.index),
        writer.metrics,
        topic=writer.topics.ingest,
    )
    request = UpsertDocuments(
        collection=collection, documents=[Document(id=f"d{i}", text=LONG) for i in range(4)]
    )
    await asyncio.gather(writer.writer.upsert(request, at(0, 7)), other.upsert(request, at(0, 7)))

    rows = await _chunks(writer.store.pool, collection)
    assert len(rows) == 4 * len(chunk_text(LONG, size=256, overlap=32))
    await index_log.until(lambda records: len(records) >= 2)
    first, second = index_log.events()
    assert first == second
    assert sorted(c.chunk_id for c in first.upserted) == sorted(r["chunk_id"] for r in rows)
    assert (
        writer.sample("x0_rag_ingested_documents_total", collection=collection, action="upsert")
        == 4
    )
