"""What a search reads from PostgreSQL: collection existence, keyword matches, hit rows.

Keyword search is PostgreSQL full-text search over ``rag.chunks.tsv`` (English
configuration, GIN-indexed): the query is parsed with ``websearch_to_tsquery`` (quoted
phrases, ``or``, ``-word``; never a syntax error) and matches are ranked with
``ts_rank_cd`` (cover density), ties by chunk id so that results are deterministic.

Metadata filters run in SQL with the same meaning as
:meth:`x0_rag.domain.filters.MetadataFilter.matches`: each clause is
``metadata -> key = ANY(values)`` on ``jsonb`` values, which compares JSON kinds
(``true`` is not ``1``, ``"1"`` is not ``1``), numbers by value (``1`` is ``1.0``),
never matches a missing key, and never matches an array or object against a scalar.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import asyncpg

from x0_common.postgres import TRANSIENT_ERRORS
from x0_common.principal import DEFAULT_TENANT
from x0_rag.domain.ports import ChunkRow
from x0_rag.errors import Unavailable

if TYPE_CHECKING:
    from x0_rag.domain.filters import MetadataFilter

_EXISTS = "SELECT EXISTS (SELECT 1 FROM rag.collections WHERE tenant = $1 AND name = $2)"
_KEYWORD = """
SELECT c.chunk_id, ts_rank_cd(c.tsv, q.query) AS score
FROM rag.chunks c
JOIN rag.documents d
  ON d.tenant = c.tenant AND d.collection = c.collection AND d.id = c.document_id
CROSS JOIN websearch_to_tsquery('english', $3) AS q(query)
WHERE c.tenant = $1 AND c.collection = $2 AND c.tsv @@ q.query{where}
ORDER BY score DESC, c.chunk_id
LIMIT $4
"""
_HITS = """
SELECT c.chunk_id, c.document_id, c.text, c.start_offset, c.end_offset, d.metadata
FROM rag.chunks c
JOIN rag.documents d
  ON d.tenant = c.tenant AND d.collection = c.collection AND d.id = c.document_id
WHERE c.tenant = $1 AND c.collection = $2 AND c.chunk_id = ANY($3::bigint[])
"""


def filter_sql(where: MetadataFilter, first_parameter: int) -> tuple[str, list[Any]]:
    """``AND``-ed SQL conditions on ``d.metadata`` for ``where``, and their parameters."""
    conditions, parameters = [], []
    number = first_parameter
    for clause in where.clauses:
        conditions.append(f" AND (d.metadata -> ${number}::text) = ANY(${number + 1}::jsonb[])")
        parameters += [clause.key, [json.dumps(value) for value in clause.values]]
        number += 2
    return "".join(conditions), parameters


class PostgresRetrieval:
    """One tenant's search reads on the ``rag`` schema
    (:class:`~x0_rag.domain.ports.Retrieval`)."""

    def __init__(self, pool: asyncpg.Pool, *, tenant: str = DEFAULT_TENANT) -> None:
        self._pool = pool
        self._tenant = tenant

    async def collection_exists(self, name: str) -> bool:
        """Whether the tenant has the collection ``name``."""
        return bool(await self._run(self._pool.fetchval, _EXISTS, self._tenant, name))

    async def keyword(
        self, collection: str, query: str, limit: int, where: MetadataFilter
    ) -> list[tuple[int, float]]:
        """Up to ``limit`` ``(chunk id, ts_rank_cd)`` matching ``query`` and ``where``."""
        conditions, parameters = filter_sql(where, 5)
        rows = await self._run(
            self._pool.fetch,
            _KEYWORD.format(where=conditions),
            self._tenant,
            collection,
            query,
            limit,
            *parameters,
        )
        return [(int(row["chunk_id"]), float(row["score"])) for row in rows]

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
