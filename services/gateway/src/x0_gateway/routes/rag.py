"""``/v1/rag/...``: collections, document ingest (through Kafka) and search."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from x0_common.errors import DeadlineExceeded
from x0_common.events import rag as r
from x0_gateway.deps import RequesterDep, SettingsDep
from x0_gateway.forwarding import PROBLEM_RESPONSES, pass_on

T = r.RagTypes
router = APIRouter(prefix="/v1/rag", tags=["rag"])

CollectionPath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
DocumentPath = Annotated[str, Path(min_length=1, max_length=256)]


class DocumentsBody(BaseModel):
    """Documents to insert or replace in the collection."""

    model_config = ConfigDict(extra="forbid")

    documents: list[r.Document] = Field(min_length=1, max_length=r.MAX_DOCUMENTS_PER_MESSAGE)


class SearchBody(BaseModel):
    """A search of the collection in the path."""

    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=2_000, examples=["how do I open a file?"])
    k: int = Field(default=10, ge=1, le=r.MAX_K)
    mode: r.SearchMode = "hybrid"
    filter: dict[str, Any] | None = Field(default=None, examples=[{"lang": "en"}])
    ef: int | None = Field(default=None, ge=8, le=1000)
    min_version: r.VersionToken | None = None


async def _ask(
    requester: RequesterDep,
    settings: SettingsDep,
    message_type: str,
    request: BaseModel,
    status_code: int = 200,
) -> Response:
    return await pass_on(
        requester, settings, r.REQUESTS_TOPIC, message_type, request, status_code=status_code
    )


@router.post(
    "/collections",
    status_code=201,
    response_model=r.CollectionInfo,
    responses=PROBLEM_RESPONSES,
    summary="Create a collection with its index parameters",
)
async def create_collection(
    body: r.CreateCollectionRequest, requester: RequesterDep, settings: SettingsDep
) -> Response:
    """Idempotent for the same parameters; 409 when the name exists with others."""
    return await _ask(requester, settings, T.COLLECTION_CREATE, body, status_code=201)


@router.get(
    "/collections",
    response_model=r.ListCollectionsResult,
    responses=PROBLEM_RESPONSES,
    summary="Every collection with its statistics",
)
async def list_collections(requester: RequesterDep, settings: SettingsDep) -> Response:
    """All collections."""
    return await _ask(requester, settings, T.COLLECTION_LIST, r.ListCollectionsRequest())


@router.get(
    "/collections/{name}",
    response_model=r.CollectionInfo,
    responses=PROBLEM_RESPONSES,
    summary="A collection and its statistics",
)
async def get_collection(
    name: CollectionPath, requester: RequesterDep, settings: SettingsDep
) -> Response:
    """Its settings, documents and chunks."""
    return await _ask(requester, settings, T.COLLECTION_GET, r.CollectionNameRequest(name=name))


@router.delete(
    "/collections/{name}",
    response_model=r.DeleteCollectionResult,
    responses=PROBLEM_RESPONSES,
    summary="Delete a collection and its documents",
)
async def delete_collection(
    name: CollectionPath, requester: RequesterDep, settings: SettingsDep
) -> Response:
    """Gone from the database and from every replica's index."""
    return await _ask(requester, settings, T.COLLECTION_DELETE, r.CollectionNameRequest(name=name))


async def _ingest(
    requester: RequesterDep,
    settings: SettingsDep,
    collection: str,
    message_type: str,
    message: BaseModel,
    *,
    documents: int,
    wait: bool,
) -> Response:
    # Unknown collections are a 404 here rather than a refused message later.
    await requester.request(
        r.REQUESTS_TOPIC,
        T.COLLECTION_GET,
        r.CollectionNameRequest(name=collection),
        timeout=settings.request_timeout_seconds,
    )
    version = await requester.publish(r.INGEST_TOPIC, message_type, message, key=collection)
    accepted = r.IngestAccepted(version=version, documents=documents)
    if not wait:
        return Response(accepted.model_dump_json(), status_code=202, media_type="application/json")
    try:
        await requester.request(
            r.REQUESTS_TOPIC,
            T.VERSION_WAIT,
            r.VersionWaitRequest(version=version),
            timeout=settings.request_timeout_seconds,
        )
    except DeadlineExceeded:
        # Durably accepted, just not searchable yet: the caller keeps its token
        # (202, as without wait) rather than losing it to a 504.
        return Response(accepted.model_dump_json(), status_code=202, media_type="application/json")
    return Response(accepted.model_dump_json(), status_code=200, media_type="application/json")


@router.post(
    "/collections/{name}/documents",
    status_code=202,
    response_model=r.IngestAccepted,
    responses={**PROBLEM_RESPONSES, 200: {"description": "Applied (with `wait=true`)"}},
    summary="Insert or replace documents; 202 once durably in Kafka",
)
async def upsert_documents(
    name: CollectionPath,
    body: DocumentsBody,
    requester: RequesterDep,
    settings: SettingsDep,
    wait: Annotated[bool, Query(description="answer 200 once searchable")] = False,
) -> Response:
    """The version token orders the write: pass it as a search's ``min_version``."""
    message = r.UpsertDocuments(collection=name, documents=body.documents)
    return await _ingest(
        requester, settings, name, T.UPSERT, message, documents=len(body.documents), wait=wait
    )


@router.delete(
    "/collections/{name}/documents/{document_id}",
    status_code=202,
    response_model=r.IngestAccepted,
    responses=PROBLEM_RESPONSES,
    summary="Delete a document from the database and every index",
)
async def delete_document(
    name: CollectionPath,
    document_id: DocumentPath,
    requester: RequesterDep,
    settings: SettingsDep,
    wait: Annotated[bool, Query(description="answer 200 once applied")] = False,
) -> Response:
    """A missing document is not an error."""
    message = r.DeleteDocuments(collection=name, ids=[document_id])
    return await _ingest(requester, settings, name, T.DELETE, message, documents=1, wait=wait)


@router.get(
    "/collections/{name}/documents/{document_id}",
    response_model=r.DocumentResult,
    responses=PROBLEM_RESPONSES,
    summary="A stored document and its chunks",
)
async def get_document(
    name: CollectionPath,
    document_id: DocumentPath,
    requester: RequesterDep,
    settings: SettingsDep,
) -> Response:
    """The text, metadata and chunk offsets."""
    request = r.GetDocumentRequest(collection=name, id=document_id)
    return await _ask(requester, settings, T.DOCUMENT_GET, request)


@router.post(
    "/collections/{name}/search",
    response_model=r.SearchResult,
    responses=PROBLEM_RESPONSES,
    summary="Vector, keyword or hybrid (RRF) search",
)
async def search(
    name: CollectionPath, body: SearchBody, requester: RequesterDep, settings: SettingsDep
) -> Response:
    """Best hits first; with ``min_version``, only once that write is applied."""
    request = r.SearchRequest(collection=name, **body.model_dump())
    return await _ask(requester, settings, T.SEARCH, request)
