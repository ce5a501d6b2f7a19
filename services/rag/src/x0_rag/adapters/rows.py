"""Rows of the ``rag`` schema (``migrations/001_rag.sql``, ``002_ingest_log.sql``,
``003_tenants.sql``): the statements that read and write them, conversions to contract
models, and the translation of PostgreSQL failures into the shared error tree.

Every statement on collections, documents and chunks names the tenant (``$1``): they
are keyed by ``(tenant, collection, ...)``, and another tenant's collection is simply
not there.

Shared by the collection store (:mod:`.store`) and the ingest writes (:mod:`.ingest_store`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from x0_common.events.rag import CollectionInfo, IndexParams
from x0_common.postgres import unavailable_when_transient
from x0_rag.errors import NotFound

logger = logging.getLogger(__name__)

DIMENSIONS: Final = 384
# Embeddings are stored as 384 little-endian float32 values (1536 bytes).
EMBEDDING_DTYPE: Final = np.dtype("<f4")

# -- collections ------------------------------------------------------------------------

_COLLECTION_COLUMNS = "name, m, ef_construction, ef, chunk_size, chunk_overlap, created_at"

INSERT_COLLECTION = f"""
INSERT INTO rag.collections (tenant, name, m, ef_construction, ef, chunk_size, chunk_overlap)
VALUES ($1, $2, $3, $4, $5, $6, $7)
ON CONFLICT (tenant, name) DO NOTHING
RETURNING {_COLLECTION_COLUMNS}, 0::bigint AS documents, 0::bigint AS chunks
"""  # noqa: S608 - column names are constants

# $2 NULL lists every collection of the tenant. Counts use the (tenant, collection, ...)
# indexes.
SELECT_COLLECTIONS = f"""
SELECT {_COLLECTION_COLUMNS},
       (SELECT count(*) FROM rag.documents d
         WHERE d.tenant = c.tenant AND d.collection = c.name) AS documents,
       (SELECT count(*) FROM rag.chunks k
         WHERE k.tenant = c.tenant AND k.collection = c.name) AS chunks
FROM rag.collections c
WHERE c.tenant = $1 AND ($2::text IS NULL OR c.name = $2)
ORDER BY c.name
"""  # noqa: S608 - column names are constants

DELETE_COLLECTION = "DELETE FROM rag.collections WHERE tenant = $1 AND name = $2 RETURNING name"

# Under the writer's transaction: the collection cannot be deleted until it commits.
LOCK_COLLECTION = (
    "SELECT chunk_size, chunk_overlap FROM rag.collections"
    " WHERE tenant = $1 AND name = $2 FOR KEY SHARE"
)
CHUNKING_OF = (
    "SELECT chunk_size, chunk_overlap FROM rag.collections WHERE tenant = $1 AND name = $2"
)

# Quotas. The lock serialises one tenant's collection creates, and its writers' upserts
# (a different key), for the rest of the transaction, so a count taken under it holds.
LOCK_TENANT = "SELECT pg_advisory_xact_lock(hashtextextended($2 || $1, 0))"
COUNT_COLLECTIONS = "SELECT count(*) FROM rag.collections WHERE tenant = $1"
COUNT_DOCUMENTS = "SELECT count(*) FROM rag.documents WHERE tenant = $1"
# Of ``$3`` ids, how many the collection does not hold yet (an upsert adds those).
COUNT_NEW_DOCUMENTS = """
SELECT count(*) FROM unnest($3::text[]) AS n(id)
WHERE NOT EXISTS (
    SELECT 1 FROM rag.documents d WHERE d.tenant = $1 AND d.collection = $2 AND d.id = n.id
)
"""

# -- documents --------------------------------------------------------------------------

SELECT_DOCUMENT = """
SELECT id, text, metadata::text AS metadata, version
FROM rag.documents WHERE tenant = $1 AND collection = $2 AND id = $3
"""
SELECT_CHUNK_REFS = """
SELECT chunk_id, start_offset, end_offset
FROM rag.chunks WHERE tenant = $1 AND collection = $2 AND document_id = $3
ORDER BY ordinal
"""
COLLECTION_EXISTS = "SELECT 1 FROM rag.collections WHERE tenant = $1 AND name = $2"

# -- ingest writes ----------------------------------------------------------------------

# Serialises the writers of one ingest partition from their transaction until their
# index event is acknowledged, so that events reach the index topic in commit order
# even while a rebalance lets two writers hold the partition for a moment.
_PARTITION_KEY = "hashtextextended('x0-rag-ingest:' || $1::text || '/' || ($2::integer)::text, 0)"
LOCK_PARTITION = f"SELECT pg_advisory_lock({_PARTITION_KEY})"
UNLOCK_PARTITION = f"SELECT pg_advisory_unlock({_PARTITION_KEY})"

# Creates the partition's row if new and locks it either way (the no-op update takes
# the row lock), so concurrent writers of one partition apply a message once.
LOCK_PROGRESS = """
INSERT INTO rag.ingest_progress AS p (topic, partition, next_offset) VALUES ($1, $2, 0)
ON CONFLICT (topic, partition) DO UPDATE SET next_offset = p.next_offset
RETURNING next_offset
"""
READ_PROGRESS = "SELECT next_offset FROM rag.ingest_progress WHERE topic = $1 AND partition = $2"
ADVANCE_PROGRESS = """
UPDATE rag.ingest_progress SET next_offset = $3 WHERE topic = $1 AND partition = $2
"""

REMOVE_CHUNKS_OF = """
DELETE FROM rag.chunks WHERE tenant = $1 AND collection = $2 AND document_id = ANY($3::text[])
RETURNING chunk_id
"""
UPSERT_DOCUMENTS = """
INSERT INTO rag.documents (tenant, collection, id, text, metadata, version)
SELECT $1, $2, d.id, d.text, d.metadata::jsonb, $6
FROM unnest($3::text[], $4::text[], $5::text[]) AS d(id, text, metadata)
ON CONFLICT (tenant, collection, id) DO UPDATE
SET text = EXCLUDED.text, metadata = EXCLUDED.metadata, version = EXCLUDED.version,
    updated_at = now()
"""
INSERT_CHUNKS = """
INSERT INTO rag.chunks (tenant, collection, document_id, ordinal, start_offset, end_offset,
                        text, embedding)
SELECT $1, $2, c.document_id, c.ordinal, c.start_offset, c.end_offset, c.text, c.embedding
FROM unnest($3::text[], $4::integer[], $5::integer[], $6::integer[], $7::text[],
            $8::bytea[]) AS c(document_id, ordinal, start_offset, end_offset, text, embedding)
RETURNING chunk_id, document_id, ordinal
"""
DELETE_DOCUMENTS = """
DELETE FROM rag.documents WHERE tenant = $1 AND collection = $2 AND id = ANY($3::text[])
RETURNING id
"""
# Every document of the collection (their chunks go by the cascade); returns how many.
DROP_DOCUMENTS = """
WITH gone AS (DELETE FROM rag.documents WHERE tenant = $1 AND collection = $2 RETURNING 1)
SELECT count(*) FROM gone
"""

INSERT_LOG = """
INSERT INTO rag.ingest_log (topic, partition, position, tenant, collection, kind, removed,
                            error)
VALUES ($1, $2, $3, $4, $5, $6, $7::bigint[], $8)
"""
PRUNE_LOG = "DELETE FROM rag.ingest_log WHERE topic = $1 AND partition = $2 AND position < $3"
SELECT_LOG = """
SELECT tenant, collection, kind, removed, error FROM rag.ingest_log
WHERE topic = $1 AND partition = $2 AND position = $3
"""
# The chunks an ingest wrote that are still live: those of its documents whose
# version is still its own (a later ingest's event covers the others).
SELECT_CHUNKS_WRITTEN_BY = """
SELECT k.chunk_id, k.document_id, k.embedding, d.metadata::text AS metadata
FROM rag.documents d
JOIN rag.chunks k
  ON k.tenant = d.tenant AND k.collection = d.collection AND k.document_id = d.id
WHERE d.tenant = $1 AND d.collection = $2 AND d.id = ANY($3::text[]) AND d.version = $4
ORDER BY k.chunk_id
"""


def database_errors(operation: str) -> AbstractAsyncContextManager[None]:
    """Transient PostgreSQL failures of the document store as :class:`Unavailable`."""
    return unavailable_when_transient("document store", operation)


def collection_not_found(name: str) -> NotFound:
    """The error for a collection that does not exist."""
    return NotFound(
        f"no collection named {name!r}", details={"reason": "collection_not_found", "name": name}
    )


def collection_info(row: Mapping[str, Any]) -> CollectionInfo:
    """The contract model of a ``SELECT_COLLECTIONS`` / ``INSERT_COLLECTION`` row."""
    return CollectionInfo(
        name=row["name"],
        index=IndexParams(m=row["m"], ef_construction=row["ef_construction"], ef=row["ef"]),
        chunk_size=row["chunk_size"],
        chunk_overlap=row["chunk_overlap"],
        created_at=row["created_at"],
        documents=row["documents"],
        chunks=row["chunks"],
    )


def embedding_bytes(row: npt.NDArray[np.float32]) -> bytes:
    """One embedding as the ``rag.chunks.embedding`` column stores it."""
    return np.ascontiguousarray(row, dtype=EMBEDDING_DTYPE).tobytes()


def embedding_of(raw: bytes) -> npt.NDArray[np.float32]:
    """The float32 vector of a stored ``embedding`` column."""
    return np.frombuffer(raw, dtype=EMBEDDING_DTYPE).astype(np.float32)


def metadata_of(text: str) -> dict[str, Any]:
    """A stored ``jsonb`` value read back as ``metadata::text``."""
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


@dataclass(frozen=True, slots=True)
class IngestPosition:
    """Where an ingest message sits: its version token is ``"<partition>:<offset>"``."""

    topic: str
    partition: int
    offset: int

    @property
    def token(self) -> str:
        """The message's version token (``VersionToken`` of the contract)."""
        return f"{self.partition}:{self.offset}"
