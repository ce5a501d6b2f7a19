"""The RAG service's operations.

Queries are request/reply on ``x0.rag.requests``; writes are one-way on
``x0.rag.ingest`` (keyed by collection, answered once Kafka holds them, with a
version token for read-your-writes); ``x0.rag.index`` is the writer's log that
every replica applies.
"""

from __future__ import annotations

from x0_common.contract.operation import Http, Operation
from x0_common.contract.table import Table
from x0_common.errors import Conflict, DeadlineExceeded, InvalidInput, NotFound, TooLarge
from x0_common.events import rag as r

_V1 = "/v1/rag/collections"
# The path's ``{name}`` is the collection the request names.
_IN_COLLECTION = {"name": "collection"}
_APPLIED = {
    200: "With `wait=true`: applied, and searchable on a replica (`status: applied`,"
    " `results` per document)",
    202: "Durably in Kafka (acks=all), `status: accepted`; with `wait=true`, `status:"
    " pending`: no outcome was known before the deadline (ask `GET .../ingests/{version}`)",
    422: "The request does not match its schema (code `validation`; `details.errors[].loc`"
    " names the document's index), nothing published; or, with `wait=true`, the worker"
    " refused it (code `ingest_refused`; `details.results` gives each document's reason,"
    " e.g. `collection_deleted`). A request is applied whole or not at all: no 207.",
}
_COLLECTION_KEY = "the collection name (one collection's writes stay in order)"


class Rag(Table):
    """Every RAG operation."""

    COLLECTION_CREATE = Operation(
        name="create_collection",
        message_type="rag.collections.create.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.CreateCollectionRequest,
        result=r.CollectionInfo,
        summary="Create a collection with its index parameters",
        scope="rag:write",
        http=Http("POST", _V1, status=201),
        errors=(Conflict, InvalidInput),
    )
    COLLECTION_LIST = Operation(
        name="list_collections",
        message_type="rag.collections.list.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.ListCollectionsRequest,
        result=r.ListCollectionsResult,
        summary="Every collection with its statistics",
        scope="rag:read",
        http=Http("GET", _V1),
    )
    COLLECTION_GET = Operation(
        name="get_collection",
        message_type="rag.collections.get.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.CollectionNameRequest,
        result=r.CollectionInfo,
        summary="A collection and its statistics",
        scope="rag:read",
        http=Http("GET", f"{_V1}/{{name}}"),
        errors=(NotFound,),
    )
    COLLECTION_DELETE = Operation(
        name="delete_collection",
        message_type="rag.collections.delete.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.CollectionNameRequest,
        result=r.DeleteCollectionResult,
        summary="Delete a collection and its documents",
        scope="rag:write",
        http=Http("DELETE", f"{_V1}/{{name}}"),
    )
    DOCUMENT_GET = Operation(
        name="get_document",
        message_type="rag.documents.get.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.GetDocumentRequest,
        result=r.DocumentResult,
        summary="A stored document and its chunks",
        scope="rag:read",
        http=Http(
            "GET",
            f"{_V1}/{{name}}/documents/{{document_id}}",
            fields={**_IN_COLLECTION, "document_id": "id"},
        ),
        errors=(NotFound,),
    )
    SEARCH = Operation(
        name="search",
        message_type="rag.search.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.SearchRequest,
        result=r.SearchResult,
        summary="Vector, keyword or hybrid (RRF) search",
        scope="rag:read",
        http=Http("POST", f"{_V1}/{{name}}/search", fields=_IN_COLLECTION),
        errors=(NotFound, InvalidInput, TooLarge, DeadlineExceeded),
    )
    # Writes: the gateway checks the collection, publishes, and (``wait=true``) waits.
    UPSERT = Operation(
        name="upsert_documents",
        message_type="rag.ingest.upsert.v1",
        topic=r.INGEST_TOPIC,
        request=r.UpsertDocuments,
        result=r.IngestAccepted,
        summary="Insert or replace documents; 202 once durably in Kafka",
        scope="rag:write",
        http=Http(
            "POST",
            f"{_V1}/{{name}}/documents",
            status=202,
            fields=_IN_COLLECTION,
            other_statuses=_APPLIED,
        ),
        errors=(NotFound,),
        delivery="publish",
        key=_COLLECTION_KEY,
        producers=True,
    )
    DELETE = Operation(
        name="delete_documents",
        message_type="rag.ingest.delete.v1",
        topic=r.INGEST_TOPIC,
        request=r.DeleteDocuments,
        result=r.IngestAccepted,
        summary="Delete documents from the database and every index; missing ids are no-ops",
        scope="rag:write",
        # One document per call over HTTP: the path names it (``ids=[document_id]``).
        http=Http(
            "DELETE",
            f"{_V1}/{{name}}/documents/{{document_id}}",
            status=202,
            fields={**_IN_COLLECTION, "document_id": "ids"},
            other_statuses=_APPLIED,
        ),
        errors=(NotFound,),
        delivery="publish",
        key=_COLLECTION_KEY,
        producers=True,
    )

    INGEST_OUTCOME = Operation(
        name="get_ingest_outcome",
        message_type="rag.ingest.outcome.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.IngestOutcomeRequest,
        result=r.IngestOutcome,
        summary="What became of an ingest: applied, refused (with the reason) or pending",
        scope="rag:read",
        http=Http(
            "GET",
            f"{_V1}/{{name}}/ingests/{{version}}",
            fields=_IN_COLLECTION,
        ),
        errors=(NotFound, InvalidInput),
    )

    # Internal: the services' own messages.
    VERSION_WAIT = Operation(
        name="wait_for_version",
        message_type="rag.version.wait.v1",
        topic=r.REQUESTS_TOPIC,
        request=r.VersionWaitRequest,
        result=r.VersionWaitResult,
        summary="Answer once the replica applied an ingest's version",
        scope="internal",
        errors=(InvalidInput, DeadlineExceeded),
    )
    # Published by the collection delete after the rows are gone, so that the writer
    # drops what ingests before it left and tells every replica, in ingest order.
    COLLECTION_DROPPED = Operation(
        name="collection_dropped",
        message_type="rag.ingest.collection_dropped.v1",
        topic=r.INGEST_TOPIC,
        request=r.CollectionNameRequest,
        result=None,
        summary="A collection's rows are gone; drop what earlier ingests left",
        scope="internal",
        delivery="publish",
        key=_COLLECTION_KEY,
    )
    INDEXED = Operation(
        name="indexed",
        message_type="rag.index.applied.v1",
        topic=r.INDEX_TOPIC,
        request=r.Indexed,
        result=None,
        summary="What the writer stored, for every replica's index to apply",
        scope="internal",
        delivery="publish",
        key="the collection name",
    )
