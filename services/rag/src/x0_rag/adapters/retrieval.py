"""What a search reads from PostgreSQL: collection existence and hit rows.

Keyword matches come from the replica's lexical index
(:mod:`x0_rag.adapters.lexical`), not from PostgreSQL: BM25 needs statistics over the
whole collection that ``ts_rank_cd`` does not have.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from x0_common.postgres import TRANSIENT_ERRORS
from x0_common.principal import DEFAULT_TENANT
from x0_rag.domain.ports import ChunkRow
from x0_rag.errors import Unavailable

_EXISTS = "SELECT EXISTS (SELECT 1 FROM rag.collections WHERE tenant = $1 AND name = $2)"
_HITS = """
SELECT c.chunk_id, c.document_id, c.text, c.start_offset, c.end_offset, d.metadata
FROM rag.chunks c
JOIN rag.documents d
  ON d.tenant = c.tenant AND d.collection = c.collection AND d.id = c.document_id
WHERE c.tenant = $1 AND c.collection = $2 AND c.chunk_id = ANY($3::bigint[])
"""


class PostgresRetrieval:
    """One tenant's search reads on the ``rag`` schema
    (:class:`~x0_rag.domain.ports.Retrieval`)."""

    def __init__(self, pool: asyncpg.Pool, *, tenant: str = DEFAULT_TENANT) -> None:
        self._pool = pool
        self._tenant = tenant

    async def collection_exists(self, name: str) -> bool:
        """Whether the tenant has the collection ``name``."""
        return bool(await self._run(self._pool.fetchval, _EXISTS, self._tenant, name))

    async def hits(self, collection: str, ids: list[int]) -> dict[int, ChunkRow]:
        """The rows of those ``ids`` that still exist, by chunk id."""
        if not ids:
            return {}
        rows = await self._run(self._pool.fetch, _HITS, self._tenant, collection, ids)
        return {
            int(row["chunk_id"]): ChunkRow(
                chunk_id=int(row["chunk_id"]),
                document_id=row["document_id"],
                text=row["text"],
                start=row["start_offset"],
                end=row["end_offset"],
                metadata=_json_object(row["metadata"]),
            )
            for row in rows
        }

    @staticmethod
    async def _run(call: Any, *args: Any) -> Any:
        try:
            return await call(*args)
        except TRANSIENT_ERRORS as error:
            raise Unavailable("postgres is unavailable", details={"store": "postgres"}) from error


def _json_object(value: object) -> dict[str, Any]:
    # asyncpg hands jsonb over as text unless the pool sets a codec.
    parsed = json.loads(value) if isinstance(value, str) else value
    return parsed if isinstance(parsed, dict) else {}
