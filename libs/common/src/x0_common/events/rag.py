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

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from x0_common.events.names import CollectionName, DocumentId
from x0_common.events.storable import StorableJson, StorableText

REQUESTS_TOPIC: Final = "x0.rag.requests"
INGEST_TOPIC: Final = "x0.rag.ingest"
INDEX_TOPIC: Final = "x0.rag.index"

MAX_DOCUMENT_CHARS = 200_000
MAX_DOCUMENTS_PER_MESSAGE = 100
MAX_K = 100


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


class Document(_Message):
    """A document: its id within the collection, its text and JSON metadata."""

    id: DocumentId
    text: StorableText = Field(min_length=1, max_length=MAX_DOCUMENT_CHARS)
    metadata: StorableJson = Field(default_factory=dict)


class UpsertDocuments(_Message):
    """Insert or replace documents (their old chunks go). Published to ``x0.rag.ingest``."""

    collection: CollectionName
    documents: list[Document] = Field(min_length=1, max_length=MAX_DOCUMENTS_PER_MESSAGE)


class DeleteDocuments(_Message):
    """Remove documents from the index and the database (missing ids are no-ops)."""

    collection: CollectionName
    ids: list[DocumentId] = Field(min_length=1, max_length=MAX_DOCUMENTS_PER_MESSAGE)


class IngestAccepted(_Message):
    """The ingest is durably in Kafka; ``version`` orders it for read-your-writes."""

    version: VersionToken
    documents: int


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
    query: StorableText = Field(min_length=1, max_length=2_000)
    k: int = Field(default=10, ge=1, le=MAX_K)
    mode: SearchMode = "hybrid"
    filter: StorableJson | None = Field(
        default=None, examples=[{"lang": "en", "team": {"in": ["core", "infra"]}}]
    )
    ef: int | None = Field(default=None, ge=8, le=1000)
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
