"""Collections and documents on ``x0.rag.requests`` (request/reply).

Collections are the caller's tenant's (``context.tenant``): the same name in two
tenants is two collections, and another tenant's is a 404 (its existence does not
leak).

Status per case (codes of ``x0_common.errors``), with ``details.reason``:

=============================================== ============= ==== =======================
case                                            code          HTTP reason
=============================================== ============= ==== =======================
create: the name exists with other parameters   conflict      409  collection_exists
create: the name exists with the same ones      (success)     200  the existing collection
create: ``chunk_overlap >= chunk_size``         invalid_input 400
create: a new name past the tenant's quota      quota_exceeded 403 quota_exceeded
get, document get: no such collection          not_found     404  collection_not_found
document get: no such document                  not_found     404  document_not_found
ingest outcome: none known for the version      not_found     404  outcome_unknown
delete of a collection that does not exist      (success)     200  ``deleted: false``
database unreachable (retried by the responder) unavailable   503  postgres
=============================================== ============= ==== =======================

Deleting a collection removes its rows at once (cascade), then puts a
``COLLECTION_DROPPED`` marker on ``x0.rag.ingest`` keyed by the collection, so that
it sits after every ingest of the collection published before the delete. The
writer turns it into ``Indexed(collection_deleted=True)`` with the marker's own
version token, in the collection's ingest order: no replica can see an earlier
ingest's chunks come back after the drop, and an ingest still queued for the old
collection is removed again even if the name was created anew meanwhile. The marker
is published even when nothing was deleted (a redelivered delete whose first run
died before publishing it), and acknowledged before the reply.
"""

from __future__ import annotations

import logging

from x0_common.contract import Rag
from x0_common.events.rag import (
    INGEST_TOPIC,
    CollectionInfo,
    CollectionNameRequest,
    CreateCollectionRequest,
    DeleteCollectionResult,
    DocumentResult,
    GetDocumentRequest,
    IngestOutcome,
    IngestOutcomeRequest,
    ListCollectionsRequest,
    ListCollectionsResult,
)
from x0_common.kafka import RequestContext, Responder
from x0_rag.adapters.index_events import announce_drop
from x0_rag.adapters.rows import IngestPosition
from x0_rag.deps import RagDeps

logger = logging.getLogger(__name__)


def register(responder: Responder, deps: RagDeps, *, ingest_topic: str = INGEST_TOPIC) -> None:
    """Register the collection operations, ``DOCUMENT_GET`` and ``INGEST_OUTCOME`` on
    ``responder``."""

    @responder.operation(Rag.COLLECTION_CREATE)
    async def on_create(
        request: CreateCollectionRequest, context: RequestContext
    ) -> CollectionInfo:
        info, created = await deps.store.of(context.tenant).create_collection(request)
        if created:
            logger.info("collection created", extra={"collection": info.name})
        return info

    @responder.operation(Rag.COLLECTION_GET)
    async def on_get(request: CollectionNameRequest, context: RequestContext) -> CollectionInfo:
        return await deps.store.of(context.tenant).collection(request.name)

    @responder.operation(Rag.COLLECTION_LIST)
    async def on_list(_: ListCollectionsRequest, context: RequestContext) -> ListCollectionsResult:
        return ListCollectionsResult(collections=await deps.store.of(context.tenant).collections())

    @responder.operation(Rag.COLLECTION_DELETE)
    async def on_delete(
        request: CollectionNameRequest, context: RequestContext
    ) -> DeleteCollectionResult:
        deleted = await deps.store.of(context.tenant).delete_collection(request.name)
        # Retried within the caller's deadline rather than by the responder: a second
        # run would find nothing left to delete and answer ``deleted: false``.
        await announce_drop(
            deps.broker,
            ingest_topic,
            request.name,
            principal=context.principal,
            give_up_at=context.deadline,
        )
        if deleted:
            logger.info("collection deleted", extra={"collection": request.name})
        return DeleteCollectionResult(name=request.name, deleted=deleted)

    @responder.operation(Rag.DOCUMENT_GET)
    async def on_document(request: GetDocumentRequest, context: RequestContext) -> DocumentResult:
        return await deps.store.of(context.tenant).document(request.collection, request.id)

    @responder.operation(Rag.INGEST_OUTCOME)
    async def on_ingest_outcome(
        request: IngestOutcomeRequest, context: RequestContext
    ) -> IngestOutcome:
        # The model's pattern guarantees "<partition>:<offset>".
        partition, offset = (int(part) for part in request.version.split(":"))
        position = IngestPosition(ingest_topic, partition, offset)
        return await deps.store.of(context.tenant).ingest_outcome(position, request.collection)
