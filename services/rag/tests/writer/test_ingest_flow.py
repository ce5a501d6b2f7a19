"""The writer and the collection handlers as the worker runs them: responders on the real
broker, requests and ingests sent the way the gateway sends them."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from x0_common.contract import Rag
from x0_common.errors import NotFound
from x0_common.events.envelope import Headers
from x0_common.events.rag import (
    CollectionNameRequest,
    CreateCollectionRequest,
    Document,
    GetDocumentRequest,
    IngestOutcomeRequest,
    ListCollectionsRequest,
    UpsertDocuments,
)
from x0_common.kafka import Requester
from x0_common.kafka.broker import new_broker
from x0_common.kafka.clients import producer_options
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.resources import Stores
from x0_common.settings import CommonSettings, KafkaSettings
from x0_common.testing.kafka import responder_under_test, running_requester
from x0_common.testing.principals import principal_header
from x0_rag.adapters.embedder import DynamicBatcher
from x0_rag.deps import RagDeps
from x0_rag.handlers import collections
from x0_rag.handlers.ingest import writer_responder
from x0_rag.metrics import RagMetrics
from x0_rag.settings import RagSettings

from .support import EventLog, Topics

pytestmark = pytest.mark.integration

TEXT = "Replicas apply index events in order. " * 20


@dataclass
class Worker:
    """The rag worker's writer and collection responders, in this test's event loop."""

    requester: Requester
    requests_topic: str
    topics: Topics
    settings: KafkaSettings

    async def call(self, message_type: str, payload: BaseModel) -> dict[str, Any]:
        """A request to the collection handlers, as the gateway sends it (on behalf of a
        caller of the default tenant); the result."""
        return await self.requester.request(
            self.requests_topic, message_type, payload, timeout=30, principal=principal_header()
        )

    async def ingest(self, message_type: str, payload: BaseModel, key: str) -> str:
        """An ingest, as the gateway publishes it; its version token."""
        return await self.requester.publish(
            self.topics.ingest, message_type, payload, key=key, principal=principal_header()
        )


@pytest.fixture
async def worker(
    kafka_settings: KafkaSettings, pg_pool: asyncpg.Pool, batcher: DynamicBatcher, topics: Topics
) -> AsyncIterator[Worker]:
    suffix = uuid.uuid4().hex[:12]
    requests_topic = f"x0.test.rag-requests.{suffix}"
    settings = RagSettings(
        common=CommonSettings(kafka=kafka_settings),
        writer_group_id=f"x0-test-writer-{suffix}",
        ingest_partitions=2,
    )
    broker = new_broker(kafka_settings)
    deps = RagDeps(
        settings=settings,
        metrics=RagMetrics(new_registry()),
        stores=Stores.of(pg_pool),
        broker=broker,
    )
    deps.batcher = batcher
    writer = writer_responder(
        broker,
        deps,
        ResponderMetrics(new_registry(), "rag"),
        topic=topics.ingest,
        index_topic=topics.index,
    )
    requests = responder_under_test(
        broker,
        kafka_settings,
        requests_topic,
        service="rag",
        group_id=f"x0-test-queries-{suffix}",
    )
    collections.register(requests, deps, ingest_topic=topics.ingest)
    for responder in (writer, requests):
        await responder.ensure_topics()
    await broker.start()
    try:
        async with running_requester(kafka_settings, f"{requests_topic}.replies") as requester:
            await writer.wait_assigned()
            await requests.wait_assigned()
            yield Worker(requester, requests_topic, topics, kafka_settings)
    finally:
        for responder in (writer, requests):
            await responder.close()
        await broker.stop()


def _sources(log: EventLog) -> list[str]:
    return [event.source for event in log.events()]


async def test_collections_and_ingests_round_trip(
    worker: Worker, collection: str, index_log: EventLog
) -> None:
    created = await worker.call(
        Rag.COLLECTION_CREATE.message_type, CreateCollectionRequest(name=collection, chunk_size=128)
    )
    assert (created["name"], created["chunk_size"], created["documents"]) == (collection, 128, 0)
    documents = [Document(id="a", text=TEXT, metadata={"k": 1}), Document(id="b", text=TEXT)]
    version = await worker.ingest(
        Rag.UPSERT.message_type,
        UpsertDocuments(collection=collection, documents=documents),
        collection,
    )

    await index_log.until(lambda records: len(records) >= 1)
    (event,) = index_log.events()
    assert event.source == version  # the token the gateway hands out is the event's source
    assert index_log.records[0].partition == int(version.split(":")[0])
    info = await worker.call(
        Rag.COLLECTION_GET.message_type, CollectionNameRequest(name=collection)
    )
    assert (info["documents"], info["chunks"]) == (2, len(event.upserted))
    listed = await worker.call(Rag.COLLECTION_LIST.message_type, ListCollectionsRequest())
    assert collection in [c["name"] for c in listed["collections"]]
    document = await worker.call(
        Rag.DOCUMENT_GET.message_type, GetDocumentRequest(collection=collection, id="a")
    )
    assert (document["text"], document["metadata"], document["version"]) == (
        TEXT,
        {"k": 1},
        version,
    )

    deleted = await worker.call(
        Rag.COLLECTION_DELETE.message_type, CollectionNameRequest(name=collection)
    )
    assert deleted == {"name": collection, "deleted": True}
    await index_log.until(lambda records: len(records) >= 2)
    dropped = index_log.events()[1]
    assert (dropped.collection, dropped.collection_deleted, dropped.error) == (
        collection,
        True,
        None,
    )
    # The marker went to the collection's place in the ingest order: after its upsert.
    partition, offset = map(int, dropped.source.split(":"))
    assert partition == int(version.split(":")[0])
    assert offset > int(version.split(":")[1])
    again = await worker.call(
        Rag.COLLECTION_DELETE.message_type, CollectionNameRequest(name=collection)
    )
    assert again == {"name": collection, "deleted": False}


async def test_poison_and_refused_ingests_still_let_replicas_move_on(
    worker: Worker, collection: str, index_log: EventLog
) -> None:
    await worker.call(Rag.COLLECTION_CREATE.message_type, CreateCollectionRequest(name=collection))
    producer = AIOKafkaProducer(**producer_options(worker.settings))
    await producer.start()
    try:
        sent = []
        for headers, value in [
            ({Headers.TYPE: Rag.UPSERT.message_type}, b"{not json"),
            (
                {Headers.TYPE: Rag.UPSERT.message_type},
                b'{"collection": "%s", "documents": []}' % collection.encode(),
            ),
            ({Headers.TYPE: "rag.ingest.unknown.v1"}, b"{}"),
            # An expired deadline: no reply is due, so the ingest must still be applied.
            (
                {
                    Headers.TYPE: Rag.UPSERT.message_type,
                    Headers.DEADLINE: str(int(time.time() * 1000) - 60_000),
                },
                UpsertDocuments(collection=collection, documents=[Document(id="late", text=TEXT)])
                .model_dump_json()
                .encode(),
            ),
        ]:
            metadata = await producer.send_and_wait(
                worker.topics.ingest,
                value,
                key=collection.encode(),
                headers=[(k, v.encode()) for k, v in headers.items()],
            )
            sent.append(f"{metadata.partition}:{metadata.offset}")
    finally:
        await producer.stop()
    refused = await worker.ingest(
        Rag.UPSERT.message_type,
        UpsertDocuments(collection="t-no-such-collection", documents=[Document(id="x", text=TEXT)]),
        collection,
    )

    await index_log.until(lambda records: len(records) >= 5)
    events = {event.source: event for event in index_log.events()}
    assert _sources(index_log) == [*sent, refused]
    assert events[sent[0]].error == "dead_lettered: undecodable"
    assert events[sent[0]].collection == collection  # from the record's key
    assert events[sent[1]].error == "dead_lettered: schema_mismatch"
    assert events[sent[2]].error == "dead_lettered: unknown_type"
    assert events[sent[3]].error is None
    assert len(events[sent[3]].upserted) > 0
    assert events[refused].error is not None
    assert events[refused].error.startswith("not_found:")

    dead = EventLog(worker.settings, f"{worker.topics.ingest}.dlq")
    await dead.start()
    try:
        parked = await dead.until(lambda records: len(records) >= 3)
    finally:
        await dead.stop()
    assert sorted(dict(r.headers)[Headers.DLQ_REASON].decode() for r in parked) == [
        "schema_mismatch",
        "undecodable",
        "unknown_type",
    ]


async def test_ingests_are_their_senders_tenants_and_refused_without_the_scope(
    worker: Worker, collection: str, index_log: EventLog
) -> None:
    await worker.call(Rag.COLLECTION_CREATE.message_type, CreateCollectionRequest(name=collection))
    upsert = UpsertDocuments(collection=collection, documents=[Document(id="d", text=TEXT)])
    other = f"other-{uuid.uuid4().hex[:8]}"
    versions = [
        # Another tenant has no collection of that name: refused as not found.
        await worker.requester.publish(
            worker.topics.ingest,
            Rag.UPSERT.message_type,
            upsert,
            key=collection,
            principal=principal_header(other),
        ),
        # A principal that may read but not write, and one that does not parse.
        await worker.requester.publish(
            worker.topics.ingest,
            Rag.UPSERT.message_type,
            upsert,
            key=collection,
            principal=principal_header(scopes=["rag:read"]),
        ),
        await worker.requester.publish(
            worker.topics.ingest, Rag.UPSERT.message_type, upsert, key=collection, principal="x"
        ),
    ]
    await index_log.until(lambda records: len(records) >= 3)
    events = {event.source: event for event in index_log.events()}
    first, forbidden, unauthenticated = (events[version] for version in versions)
    assert (first.tenant, first.error is not None) == (other, True)
    assert first.error is not None
    assert first.error.startswith("not_found:")
    assert forbidden.error == "dead_lettered: forbidden"
    assert unauthenticated.error == "dead_lettered: unauthenticated"
    info = await worker.call(
        Rag.COLLECTION_GET.message_type, CollectionNameRequest(name=collection)
    )
    assert info["documents"] == 0


async def test_every_ingest_message_has_an_outcome_asked_by_its_version(
    worker: Worker, collection: str, index_log: EventLog
) -> None:
    """What an upstream producer learns from ``INGEST_OUTCOME`` with the ``partition:offset``
    Kafka acknowledged: applied, refused with the reason, dead-lettered, or pending."""
    await worker.call(Rag.COLLECTION_CREATE.message_type, CreateCollectionRequest(name=collection))
    good = UpsertDocuments(collection=collection, documents=[Document(id="d", text=TEXT)])
    producer = AIOKafkaProducer(**producer_options(worker.settings))
    await producer.start()
    try:
        sent = {}
        for name, value in [
            ("applied", good.model_dump_json().encode()),
            # What a producer that skips the model's checks sends: NUL in the text.
            (
                "nul",
                b'{"collection": "%s", "documents": [{"id": "n", "text": "a\\u0000b"}]}'
                % collection.encode(),
            ),
        ]:
            metadata = await producer.send_and_wait(
                worker.topics.ingest,
                value,
                key=collection.encode(),
                headers=[(Headers.TYPE, Rag.UPSERT.message_type.encode())],
            )
            sent[name] = f"{metadata.partition}:{metadata.offset}"
    finally:
        await producer.stop()
    # Keyed by the collection, so on the same partition as the two above.
    missing = UpsertDocuments(collection="t-no-such-collection", documents=good.documents)
    sent["missing"] = await worker.ingest(Rag.UPSERT.message_type, missing, collection)
    await index_log.until(lambda records: len(records) >= 3)

    async def outcome(version: str, name: str = collection) -> dict[str, Any]:
        return await worker.call(
            Rag.INGEST_OUTCOME.message_type,
            IngestOutcomeRequest(collection=name, version=version),
        )

    assert await outcome(sent["applied"]) == {
        "version": sent["applied"],
        "collection": collection,
        "status": "applied",
        "refusal": None,
    }
    nul = await outcome(sent["nul"])
    assert nul["status"] == "refused"
    assert nul["refusal"]["code"] == "dead_lettered"
    assert "schema_mismatch" in nul["refusal"]["message"]
    refused = await outcome(sent["missing"], "t-no-such-collection")
    assert refused["status"] == "refused"
    assert refused["refusal"]["code"] == "collection_not_found"

    # Not written yet (the partition's next offsets): pending.
    partition, offset = sent["missing"].split(":")
    assert (await outcome(f"{partition}:{int(offset) + 1000}"))["status"] == "pending"
    # Asked through another collection (or tenant): nothing to tell.
    with pytest.raises(NotFound) as unknown:
        await outcome(sent["applied"], "t-another-collection")
    assert unknown.value.details["reason"] == "outcome_unknown"
