"""Messages of the RAG service.

Topics:

- ``x0.rag.requests`` — request/reply: collections, documents, search, version waits.
- ``x0.rag.ingest`` — document upserts and deletes, from the gateway or from upstream
  producers (no reply needed; keyed by collection so one collection stays in order).
  The version token of an ingest is ``"<partition>:<offset>"`` of its message here.
- ``x0.rag.index`` — internal: what the writer stored, for every replica's index to
  apply (each replica reads all of it, with no consumer group).

Binary data never appears here; texts are UTF-8 JSON strings.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic_core import PydanticCustomError

from x0_common.events.names import CollectionName, DocumentId
from x0_common.events.storable import StorableJson, StorableText, refuse_nul_in_json

REQUESTS_TOPIC: Final = "x0.rag.requests"
INGEST_TOPIC: Final = "x0.rag.ingest"
INDEX_TOPIC: Final = "x0.rag.index"

MAX_DOCUMENT_CHARS = 200_000
MAX_DOCUMENTS_PER_MESSAGE = 100
MAX_K = 100
# Metadata is copied onto every chunk of its document in index events and replica memory.
MAX_METADATA_BYTES: Final = 16_384


VersionToken = Annotated[
    str, StringConstraints(pattern=r"^[0-9]{1,6}:[0-9]{1,19}$"), Field(examples=["0:1234"])
]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IndexParams(_Message):
    """hnswlib parameters of a collection (space is always cosine)."""

    m: int = Field(default=16, ge=4, le=64)
    ef_construction: int = Field(default=200, ge=16, le=1000)
    ef: int = Field(default=64, ge=8, le=1000)


class CreateCollectionRequest(_Message):
    """A namespace of documents with its own index and chunking."""

    name: CollectionName
    index: IndexParams = Field(default_factory=IndexParams)
    chunk_size: int = Field(default=512, ge=64, le=4096)
    chunk_overlap: int = Field(default=50, ge=0, le=1024)


class CollectionNameRequest(_Message):
    """Names one collection."""

    name: CollectionName


class ListCollectionsRequest(_Message):
    """List every collection."""


class CollectionInfo(_Message):
    """A collection's settings and what it holds."""

    name: str
    index: IndexParams
    chunk_size: int
    chunk_overlap: int
    created_at: datetime
    documents: int
    chunks: int


class ListCollectionsResult(_Message):
    """Every collection, by name."""

    collections: list[CollectionInfo]


class DeleteCollectionResult(_Message):
    """The collection and everything in it are gone."""

    name: str
    deleted: bool


def refuse_blank(text: str) -> str:
    """``text`` unchanged; a validation error (``blank_text``) when it is only whitespace:
    it would give no chunk, and no search could ever find it."""
    if not text.strip():
        raise PydanticCustomError("blank_text", "must hold more than whitespace")
    return text


def metadata_json(metadata: dict[str, Any]) -> str:
    """``metadata`` as the database stores it (compact JSON text).

    A validation error when it cannot be stored (``nul_character``: NUL in a string or
    key; ``unstorable_metadata``: NaN, infinity or an unpaired surrogate) or is larger
    than :data:`MAX_METADATA_BYTES` (``metadata_too_large``). The one rule the gateway
    (request validation) and the writer (its plan) both apply.
    """
    refuse_nul_in_json(metadata)
    try:
        text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        size = len(text.encode())
    except (ValueError, TypeError):
        # ValueError: NaN or infinity; UnicodeEncodeError (a ValueError): a lone surrogate.
        raise PydanticCustomError(
            "unstorable_metadata",
            "cannot be stored as JSON (NaN, infinity or an unpaired surrogate)",
        ) from None
    if size > MAX_METADATA_BYTES:
        raise PydanticCustomError(
            "metadata_too_large",
            "is {size} bytes of JSON, more than {limit}",
            {"size": size, "limit": MAX_METADATA_BYTES},
        )
    return text


def _storable_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    metadata_json(metadata)
    return metadata


class Document(_Message):
    """A document: its id within the collection, its text and JSON metadata.

    Refused (the gateway answers 422 naming the document's index, and publishes
    nothing): an id over 256 characters, a text that is empty, only whitespace or over
    200,000 characters, NUL characters or unpaired surrogates anywhere, and metadata
    with NaN or infinity or over 16 KiB of JSON.
    """

    id: DocumentId
    text: Annotated[StorableText, AfterValidator(refuse_blank)] = Field(
        min_length=1, max_length=MAX_DOCUMENT_CHARS
    )
    metadata: Annotated[StorableJson, AfterValidator(_storable_metadata)] = Field(
        default_factory=dict
    )


class UpsertDocuments(_Message):
    """Insert or replace documents (their old chunks go). Published to ``x0.rag.ingest``."""

    collection: CollectionName
    documents: list[Document] = Field(min_length=1, max_length=MAX_DOCUMENTS_PER_MESSAGE)


class DeleteDocuments(_Message):
    """Remove documents from the index and the database (missing ids are no-ops)."""

    collection: CollectionName
    ids: list[DocumentId] = Field(min_length=1, max_length=MAX_DOCUMENTS_PER_MESSAGE)


IngestStatus = Literal["applied", "refused", "pending"]


class Refusal(_Message):
    """Why an ingest (or one document of it) was not applied."""

    code: str = Field(
        examples=["collection_not_found"],
        description="stable reason: collection_not_found, collection_deleted, quota_exceeded,"
        " unstorable_text, unstorable_metadata, empty_text, batch_refused, dead_lettered, ...",
    )
    message: str
    document_id: str | None = Field(
        default=None, description="the document whose check refused the ingest, if one did"
    )


class DocumentOutcome(_Message):
    """What became of one document of a request (``index``: its place in the request)."""

    index: int
    id: str
    status: IngestStatus
    reason: Refusal | None = None


class IngestAccepted(_Message):
    """The ingest is durably in Kafka (acks=all); ``version`` orders it for read-your-writes.

    Without ``wait``, ``status`` is ``accepted``: ask ``GET .../ingests/{version}`` for
    the outcome. With ``wait=true`` it is the outcome (``applied``, or ``pending`` when
    none was known before the deadline), and ``results`` has one entry per document. An
    ingest is applied whole or not at all, so every document shares the status.
    """

    version: VersionToken
    documents: int
    status: Literal["accepted", "applied", "refused", "pending"] = "accepted"
    results: list[DocumentOutcome] = Field(default_factory=list)


class IngestOutcomeRequest(_Message):
    """Ask what became of the ingest ``version`` of ``collection``."""

    collection: CollectionName
    version: VersionToken


class IngestOutcome(_Message):
    """What became of one ingest message: ``applied`` (stored; every replica applies it),
    ``refused`` (nothing changed; ``refusal`` says why) or ``pending`` (not written yet)."""

    version: VersionToken
    collection: str
    status: IngestStatus
    refusal: Refusal | None = None


class IndexedChunk(_Message):
    """One stored chunk, as the index needs it."""

    chunk_id: int
    document_id: str
    vector: list[float]
    metadata: dict[str, Any] = Field(default_factory=dict)


class Indexed(_Message):
    """What the writer applied for one ingest message (internal, ``x0.rag.index``).

    ``source`` is the ingest message's version token; ``removed`` are chunk ids no
    longer live; ``error`` is set (and nothing changed) when the ingest was refused,
    so replicas still advance past its version.

    One ingest may need several events (a Kafka message holds about 1 MB, a chunk's
    vector about 8 kB of JSON): they share ``source``, are published in order on one
    partition, and only the last has ``final``; the version is applied after it.
    """

    source: VersionToken
    collection: str
    # The collection's tenant (events written before tenants existed are the default's).
    tenant: str = "default"
    upserted: list[IndexedChunk] = Field(default_factory=list)
    removed: list[int] = Field(default_factory=list)
    collection_deleted: bool = False
    error: str | None = None
    final: bool = True


class ChunkRef(_Message):
    """Where a chunk sits in its document: ``text[start:end]``."""

    chunk_id: int
    start: int
    end: int


class GetDocumentRequest(_Message):
    """Read one document back."""

    collection: CollectionName
    id: DocumentId


class DocumentResult(_Message):
    """The stored document and its chunks."""

    id: str
    text: str
    metadata: dict[str, Any]
    chunks: list[ChunkRef]
    version: VersionToken


SearchMode = Literal["vector", "keyword", "hybrid"]


class SearchRequest(_Message):
    """Search a collection; ``min_version`` waits (bounded) until that ingest is applied."""

    collection: CollectionName
    query: StorableText = Field(
        min_length=1,
        max_length=2_000,
        description=(
            "Natural-language text for vector search. For keyword search (and the keyword"
            " half of hybrid): any of the words ranks (OR, BM25; English stemming and stop"
            ' words); "quoted phrase" must appear in that order; +word must appear;'
            ' -word or -"phrase" must not. Nothing is a syntax error.'
        ),
        examples=['kafka consumer lag -zookeeper "consumer group"'],
    )
    k: int = Field(default=10, ge=1, le=MAX_K)
    mode: SearchMode = Field(
        default="hybrid",
        description=(
            "vector: embeddings (cosine); keyword: BM25 over the words; hybrid: both,"
            " fused by weighted reciprocal rank (the default: it beats either alone)."
        ),
    )
    filter: StorableJson | None = Field(
        default=None, examples=[{"lang": "en", "team": {"in": ["core", "infra"]}}]
    )
    ef: int | None = Field(default=None, ge=8, le=1000)
    keyword_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description=(
            "Hybrid only: the keyword half's share of the fusion, from 0 (vector order)"
            " to 1 (keyword order); unset: 0.5, both halves weighted equally."
        ),
    )
    min_version: VersionToken | None = None


class SearchHit(_Message):
    """One matching chunk, with the span of its document it came from."""

    chunk_id: int
    document_id: str
    score: float
    text: str
    start: int
    end: int
    metadata: dict[str, Any]


class SearchResult(_Message):
    """Best hits first."""

    hits: list[SearchHit]
    mode: SearchMode


class VersionWaitRequest(_Message):
    """Answer once the replica applied ``version`` (or fail after ``timeout_ms``)."""

    version: VersionToken
    timeout_ms: int = Field(default=5_000, ge=1, le=60_000)


class VersionWaitResult(_Message):
    """The version is applied on the replica that answered."""

    version: VersionToken
