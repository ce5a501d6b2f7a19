"""Build collection indexes (vectors and words) from PostgreSQL, the source of truth.

Everything is read in one ``REPEATABLE READ`` read-only transaction, so the
collections, their chunks and ``rag.ingest_progress`` (which the writer updates in
the same transaction as the rows) describe one moment: the rebuilt indexes contain
exactly the ingest messages below each partition's ``next_offset``, which become
the collections' applied versions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import numpy as np

from x0_common.events.rag import IndexParams
from x0_common.principal import qualified, unqualified
from x0_rag.adapters.hnsw import DIMENSIONS
from x0_rag.adapters.index.collection import CollectionIndex

if TYPE_CHECKING:
    import asyncpg

logger = logging.getLogger(__name__)

BLOCK: Final = 2048
_PROGRESS_EVERY_SECONDS: Final = 5.0

_COLLECTIONS = "SELECT tenant, name, m, ef_construction, ef FROM rag.collections"
_PROGRESS = "SELECT partition, next_offset FROM rag.ingest_progress WHERE topic = $1"
_COUNT = "SELECT count(*) FROM rag.chunks WHERE tenant = $1 AND collection = $2"
_TEXTS = "SELECT chunk_id, text FROM rag.chunks WHERE chunk_id = ANY($1::bigint[])"
_CHUNKS = """
SELECT c.chunk_id, c.embedding, c.text, d.metadata
FROM rag.chunks c
JOIN rag.documents d
  ON d.tenant = c.tenant AND d.collection = c.collection AND d.id = c.document_id
WHERE c.tenant = $1 AND c.collection = $2
ORDER BY c.chunk_id
"""


@dataclass
class PostgresState:
    """What PostgreSQL held at one moment: collections, progress, rebuilt indexes."""

    # By index key (``qualified(tenant, name)``), with the tenant and name it stands for.
    params: dict[str, IndexParams]
    names: dict[str, tuple[str, str]]
    # Per ingest partition, the last offset whose effect the rows contain.
    applied: dict[int, int]
    rebuilt: dict[str, CollectionIndex] = field(default_factory=dict)


def params_of(row: asyncpg.Record) -> IndexParams:
    """A ``rag.collections`` row's hnswlib parameters."""
    return IndexParams(m=row["m"], ef_construction=row["ef_construction"], ef=row["ef"])


def key_of(row: asyncpg.Record) -> str:
    """The index key of a ``rag.collections`` row."""
    return qualified(row["tenant"], row["name"])


async def collection_params(pool: asyncpg.Pool, keys: Iterable[str]) -> dict[str, IndexParams]:
    """The parameters, by index key, of the collections of ``keys`` that exist."""
    pairs = [unqualified(key) for key in keys]
    rows = await pool.fetch(
        f"{_COLLECTIONS} WHERE (tenant, name) IN"  # noqa: S608 - a constant
        " (SELECT * FROM unnest($1::text[], $2::text[]))",
        [tenant for tenant, _ in pairs],
        [name for _, name in pairs],
    )
    return {key_of(row): params_of(row) for row in rows}


async def chunk_texts(pool: asyncpg.Pool, ids: list[int]) -> dict[int, str]:
    """The texts of the chunks of ``ids`` that still exist, by id (chunk ids are unique
    across tenants and collections and never reused)."""
    if not ids:
        return {}
    rows = await pool.fetch(_TEXTS, ids)
    return {int(row["chunk_id"]): row["text"] for row in rows}


async def read_postgres(
    pool: asyncpg.Pool, *, ingest_topic: str, rebuild_unless: set[str]
) -> PostgresState:
    """Read collections and the writer's progress on ``ingest_topic``, and rebuild every
    collection not in ``rebuild_unless``."""
    async with (
        pool.acquire() as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        rows = await connection.fetch(_COLLECTIONS)
        progress = await connection.fetch(_PROGRESS, ingest_topic)
        state = PostgresState(
            params={key_of(row): params_of(row) for row in rows},
            names={key_of(row): (row["tenant"], row["name"]) for row in rows},
            applied={row["partition"]: row["next_offset"] - 1 for row in progress},
        )
        for key, params in sorted(state.params.items()):
            if key not in rebuild_unless:
                state.rebuilt[key] = await _rebuild(
                    connection, state.names[key], params, state.applied
                )
    return state


async def _rebuild(
    connection: asyncpg.Connection,
    names: tuple[str, str],
    params: IndexParams,
    applied: dict[int, int],
) -> CollectionIndex:
    tenant, collection_name = names
    name = qualified(tenant, collection_name)
    total = int(await connection.fetchval(_COUNT, tenant, collection_name))
    logger.info("rebuilding an index from postgres", extra={"collection": name, "chunks": total})
    collection = CollectionIndex.empty(name, params, capacity=total)
    started = last_report = time.monotonic()
    done = 0
    cursor = await connection.cursor(_CHUNKS, tenant, collection_name)
    while rows := await cursor.fetch(BLOCK):
        ids = [int(row["chunk_id"]) for row in rows]
        vectors = np.frombuffer(b"".join(row["embedding"] for row in rows), dtype="<f4")
        await asyncio.to_thread(collection.upsert_rows, ids, vectors.reshape(-1, DIMENSIONS))
        texts = {chunk_id: row["text"] for chunk_id, row in zip(ids, rows, strict=True)}
        await asyncio.to_thread(collection.lexical.upsert, texts)
        for chunk_id, row in zip(ids, rows, strict=True):
            collection.metadata[chunk_id] = _json_object(row["metadata"])
        done += len(rows)
        if time.monotonic() - last_report >= _PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            logger.info("rebuild progress", extra={"collection": name, "chunks": done, "of": total})
    await asyncio.to_thread(collection.lexical.refresh)
    collection.versions = dict(applied)
    logger.info(
        "index rebuilt",
        extra={
            "collection": name,
            "chunks": done,
            "seconds": round(time.monotonic() - started, 3),
        },
    )
    return collection


def _json_object(value: object) -> dict[str, object]:
    # asyncpg returns jsonb as text unless a codec is set on the pool.
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {}
