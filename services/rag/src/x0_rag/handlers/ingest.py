"""The writer's subscribers on ``x0.rag.ingest``: upserts, deletes and the marker a
collection delete leaves (see :mod:`x0_rag.handlers.writer` for the write path).

The topic has no replies (``Responder(replies=False)``); writers share one consumer
group (``X0_RAG_WRITER_GROUP_ID``), so each ingest partition has one writer, which
handles it in offset order. Build it with :func:`writer_responder`.

Retries: ``Unavailable`` (database down, batcher closed) is retried for about a
minute and a half (:data:`WRITER_RETRY`, under the consumer's 5-minute poll
interval); then the message is dead-lettered, and an error event still lets
replicas move past its version. An operator re-publishes it from the DLQ.
"""

from __future__ import annotations

from faststream.kafka import KafkaBroker, KafkaMessage

from x0_common.contract import Rag
from x0_common.events.rag import (
    INDEX_TOPIC,
    INGEST_TOPIC,
    CollectionNameRequest,
    DeleteDocuments,
    UpsertDocuments,
)
from x0_common.kafka import RequestContext, Responder
from x0_common.kafka.consumer import RetryPolicy
from x0_common.metrics import ResponderMetrics
from x0_rag.adapters.index_events import IndexEvents
from x0_rag.deps import RagDeps
from x0_rag.handlers.writer import IngestWriter

# Mean total wait about 90 s, at most about 3 min: a database restart or failover fits.
WRITER_RETRY = RetryPolicy(max_attempts=40, base_delay=0.1, max_delay=5.0)


def writer_responder(
    broker: KafkaBroker,
    deps: RagDeps,
    metrics: ResponderMetrics,
    *,
    topic: str = INGEST_TOPIC,
    index_topic: str = INDEX_TOPIC,
) -> Responder:
    """The ingest writer's responder on ``topic``, with its handlers registered."""
    writers: dict[str, IngestWriter] = {}

    def writer() -> IngestWriter:
        # Built on first use: the pool and the batcher open at start-up, after wiring.
        if not writers:
            writers["it"] = IngestWriter(
                deps.store,
                deps.batcher.embed_background,
                IndexEvents(broker, index_topic),
                deps.metrics,
                topic=topic,
                anonymous_tenant=deps.settings.default_tenant,
            )
        return writers["it"]

    async def dead_lettered(message: KafkaMessage, reason: str) -> None:
        await writer().dead_lettered(message, reason)

    responder = Responder(
        broker,
        topic=topic,
        group_id=deps.settings.writer_group_id,
        settings=deps.settings.common.kafka,
        metrics=metrics,
        replies=False,
        retry=WRITER_RETRY,
        partitions=deps.settings.ingest_partitions,
        on_dead_letter=dead_lettered,
        # Upstream producers' ingests without a principal belong to the default tenant.
        anonymous_tenant=deps.settings.default_tenant,
    )

    @responder.operation(Rag.UPSERT)
    async def on_upsert(request: UpsertDocuments, context: RequestContext) -> None:
        await writer().upsert(request, context)

    @responder.operation(Rag.DELETE)
    async def on_delete(request: DeleteDocuments, context: RequestContext) -> None:
        await writer().delete(request, context)

    @responder.operation(Rag.COLLECTION_DROPPED)
    async def on_dropped(request: CollectionNameRequest, context: RequestContext) -> None:
        await writer().drop(request, context)

    return responder
