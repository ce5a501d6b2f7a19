"""The ingest writer: applies each message of ``x0.rag.ingest`` once and tells replicas.

For one message at ``partition:offset`` (its version token), in order:

1. Applied before (``rag.ingest_progress``; a redelivery after a crash)? Rebuild
   its event from the log row and current rows, publish it again, done.
2. Prepare: the collection's chunking (``NotFound``), check, de-duplicate (last
   wins) and chunk the documents (:mod:`x0_rag.domain.ingest`).
3. Embed every chunk of the message in one ``batcher.embed`` call (span ``rag.embed``).
4. Under the partition's writer lock (span ``rag.index``): one transaction writes the
   rows, the log row and the progress; then the ``Indexed`` event is published and
   acknowledged. Only then does the handler return, and the responder may commit
   the ingest offset.

A refused message (a typed error that is not ``Unavailable``) is recorded as
refused and an ``Indexed(error=...)`` event is still published, so replicas move
past its version; then the error is raised for the responder to count. A message
the responder dead-letters (undecodable, wrong schema, a bug, retries exhausted)
gets its event from :meth:`IngestWriter.dead_lettered`, and an outcome row (refused,
code ``dead_lettered``) when the database takes it.

Every applied or refused message has its outcome recorded in the transaction that
applied it (:mod:`x0_rag.adapters.outcomes`): the gateway's ``wait=true`` answer and
``GET .../ingests/{version}`` read it, for the gateway and for upstream producers
(whose version token is the ``partition:offset`` Kafka acknowledged).

Tenancy: a message writes to its sender's tenant (``context.tenant``: the principal
the gateway put on it, or the worker's ``X0_RAG_DEFAULT_TENANT`` for an upstream
producer's message without one); the store is bound to that tenant for the message, so
a collection of another tenant is "no such collection" and the message is refused.

Crash cases: before the commit nothing is written and the redelivery starts over;
between commit and acknowledgement the redelivery takes step 1; a failed publish
is retried until the broker takes it (the rows are committed).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

import numpy as np
import numpy.typing as npt
from faststream.kafka import KafkaMessage
from opentelemetry import trace
from pydantic import BaseModel, ValidationError

from x0_common.contract import Rag
from x0_common.errors import InternalError, Unavailable, X0Error
from x0_common.events.envelope import Headers
from x0_common.events.names import COLLECTION_NAME_PATTERN
from x0_common.events.rag import (
    CollectionNameRequest,
    DeleteDocuments,
    Indexed,
    UpsertDocuments,
)
from x0_common.kafka import RequestContext
from x0_common.principal import DEFAULT_TENANT, Principal, qualified
from x0_rag.adapters import outcomes
from x0_rag.adapters.index_events import IndexEvents
from x0_rag.adapters.ingest_store import Applied, IngestPartition
from x0_rag.adapters.rows import IngestPosition
from x0_rag.adapters.store import RagStore
from x0_rag.domain.ingest import plan_upsert
from x0_rag.metrics import SERVICE, RagMetrics

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer("x0_rag")

Embed = Callable[[Sequence[str]], Awaitable[npt.NDArray[np.float32]]]
Kind = Literal["upsert", "delete", "drop"]
_COLLECTION = re.compile(COLLECTION_NAME_PATTERN)
_MODELS: dict[str, tuple[type[BaseModel], Kind]] = {
    Rag.UPSERT.message_type: (UpsertDocuments, "upsert"),
    Rag.DELETE.message_type: (DeleteDocuments, "delete"),
    Rag.COLLECTION_DROPPED.message_type: (CollectionNameRequest, "drop"),
}


class IngestWriter:
    """Applies ingest messages of ``topic`` to PostgreSQL and publishes index events."""

    def __init__(
        self,
        store: RagStore,
        embed: Embed,
        events: IndexEvents,
        metrics: RagMetrics,
        *,
        topic: str,
        anonymous_tenant: str = DEFAULT_TENANT,
    ) -> None:
        self._store = store
        self._anonymous_tenant = anonymous_tenant
        self._embed = embed
        self._events = events
        self._metrics = metrics
        self.topic = topic

    async def upsert(self, request: UpsertDocuments, context: RequestContext) -> None:
        """Insert or replace the message's documents (see the module's steps)."""
        position = self._position(context)
        collection = request.collection
        store = self._store.of(context.tenant)

        async def prepare_and_write() -> Applied | None:
            size, overlap = await store.chunking(collection)
            plan = plan_upsert(request.documents, size=size, overlap=overlap)
            texts = plan.texts
            with _tracer.start_as_current_span(
                "rag.embed",
                attributes={"x0.rag.collection": collection, "x0.rag.texts": len(texts)},
            ):
                vectors = await self._embed(texts)
            return await self._write(
                store,
                position,
                collection,
                "upsert",
                [document.id for document in plan.documents],
                lambda writes: writes.upsert(position, collection, plan, vectors),
            )

        ids = [document.id for document in request.documents]
        await self._apply(store, position, collection, "upsert", ids, prepare_and_write)

    async def delete(self, request: DeleteDocuments, context: RequestContext) -> None:
        """Remove the message's documents (missing ids are no-ops)."""
        position = self._position(context)
        collection = request.collection
        store = self._store.of(context.tenant)

        async def write() -> Applied | None:
            return await self._write(
                store,
                position,
                collection,
                "delete",
                (),
                lambda writes: writes.delete(position, collection, request.ids),
            )

        await self._apply(store, position, collection, "delete", (), write)

    async def drop(self, request: CollectionNameRequest, context: RequestContext) -> None:
        """The collection was deleted: remove what earlier ingests left, drop the indexes."""
        position = self._position(context)
        store = self._store.of(context.tenant)

        async def write() -> Applied | None:
            return await self._write(
                store,
                position,
                request.name,
                "drop",
                (),
                lambda writes: writes.drop(position, request.name),
            )

        await self._apply(store, position, request.name, "drop", (), write)

    async def dead_lettered(self, message: KafkaMessage, reason: str) -> None:
        """Before the responder parks ``message``: publish the event replicas wait for.

        An applied message (a bug after the commit) gets its real event back; any other
        an ``Indexed(error="dead_lettered: <reason>")``, unrecorded, so that a
        redelivery is tried afresh. Never raises.
        """
        record = message.raw_message
        assert not isinstance(record, tuple)
        position = IngestPosition(record.topic, record.partition, record.offset)
        collection, kind, ids = _identify(message)
        store = self._store.of(self._tenant_of(message))
        error_event = Indexed(
            source=position.token,
            collection=collection,
            tenant=store.tenant,
            error=f"dead_lettered: {reason}",
        )
        try:
            async with store.ingest_partition(position.topic, position.partition) as writes:
                applied = kind is not None and await store.applied(position)
                event = (
                    await writes.replay(position, collection, kind, ids)
                    if applied and kind is not None
                    else error_event
                )
                if event is error_event:
                    # Callers asking for the outcome learn where the message went.
                    await outcomes.record_dead_letter(
                        store.pool,
                        position,
                        tenant=store.tenant,
                        collection=collection,
                        reason=reason,
                    )
                await self._events.publish(event, position.partition)
        except Unavailable:
            # The database is what failed: the replicas must still move on.
            await self._events.publish(error_event, position.partition)

    # -- steps ------------------------------------------------------------------------

    def _tenant_of(self, message: KafkaMessage) -> str:
        """The tenant a message names, as far as its principal parses (an error event
        needs no more: it only moves replicas past the version)."""
        try:
            return Principal.from_header(message.headers.get(Headers.PRINCIPAL)).tenant
        except X0Error:
            return self._anonymous_tenant

    def _position(self, context: RequestContext) -> IngestPosition:
        if context.partition is None or context.offset is None:
            raise InternalError("an ingest message arrived without its partition and offset")
        return IngestPosition(self.topic, context.partition, context.offset)

    async def _apply(  # noqa: PLR0917 - one message's identity and its write
        self,
        store: RagStore,
        position: IngestPosition,
        collection: str,
        kind: Kind,
        ids: Sequence[str],
        write: Callable[[], Awaitable[Applied | None]],
    ) -> None:
        """Replay if applied before; else ``write``, turning a refusal into its event."""
        if await store.applied(position):
            await self._write(store, position, collection, kind, ids, None)
            logger.info(
                "ingest applied before, event published again", extra={"version": position.token}
            )
            return
        try:
            applied = await write()
        except Unavailable:
            raise
        except X0Error as error:
            refusal = error  # the except name is unbound when the block ends
            logger.info(
                "ingest message refused",
                extra={"version": position.token, "collection": collection, "code": refusal.code},
            )
            await self._write(
                store,
                position,
                collection,
                kind,
                ids,
                lambda writes: writes.refuse(position, collection, refusal),
            )
            raise
        if applied is not None:
            label = qualified(store.tenant, collection)
            self._metrics.ingested_documents.labels(SERVICE, label, kind).inc(applied.documents)
            if applied.event.upserted:
                chunks = len(applied.event.upserted)
                self._metrics.ingested_chunks.labels(SERVICE, label).inc(chunks)

    async def _write(  # noqa: PLR0917 - one message's identity and its write
        self,
        store: RagStore,
        position: IngestPosition,
        collection: str,
        kind: Kind,
        ids: Sequence[str],
        write: Callable[[IngestPartition], Awaitable[Applied | None]] | None,
    ) -> Applied | None:
        """Under the partition lock: ``write`` (or, if it finds the message applied, or
        is None, the replay), then publish the event. The applied result, if written now."""
        attributes = {
            "x0.rag.collection": collection,
            "x0.rag.version": position.token,
            "x0.rag.kind": kind,
        }
        with _tracer.start_as_current_span("rag.index", attributes=attributes) as span:
            async with store.ingest_partition(position.topic, position.partition) as writes:
                applied = await write(writes) if write is not None else None
                event = (
                    applied.event
                    if applied is not None
                    else await writes.replay(position, collection, kind, ids)
                )
                parts = await self._events.publish(event, position.partition)
            span.set_attributes(
                {
                    "x0.rag.replayed": applied is None,
                    "x0.rag.chunks": len(event.upserted),
                    "x0.rag.removed": len(event.removed),
                    "x0.rag.parts": parts,
                }
            )
        return applied


def _identify(message: KafkaMessage) -> tuple[str, Kind | None, list[str]]:
    """Collection, kind and document ids of a message, as far as it decodes.

    The collection falls back to the record key (ingests are keyed by collection),
    else ``""``; the kind is None when the payload does not decode.
    """
    record = message.raw_message
    assert not isinstance(record, tuple)
    known = _MODELS.get(message.headers.get(Headers.TYPE, ""))
    if known is not None:
        model, kind = known
        try:
            payload = model.model_validate_json(message.body)
        except ValidationError:
            pass
        else:
            if isinstance(payload, UpsertDocuments):
                return payload.collection, kind, [d.id for d in payload.documents]
            if isinstance(payload, DeleteDocuments):
                return payload.collection, kind, []
            if isinstance(payload, CollectionNameRequest):
                return payload.name, kind, []
    key = record.key.decode(errors="replace") if isinstance(record.key, bytes) else ""
    return (key if _COLLECTION.fullmatch(key) else ""), None, []
