"""What became of each ingest message (``rag.ingest_outcomes``, ``004_ingest_outcomes.sql``).

One row per message of the ingest topic, keyed by its position (its version token):

- ``applied``: written in the transaction that applied it (:mod:`.ingest_store`), so the
  row exists exactly when the message's effect does;
- ``refused`` with a reason code: written in the transaction that recorded the refusal,
  or, for a message the writer dead-letters, afterwards (code ``dead_lettered``), when
  the database takes it.

Readers (:meth:`x0_rag.adapters.store.RagStore.ingest_outcome`) see a message's row only
through its tenant and collection; a position the writer has not reached yet is
``pending``. Rows older than :data:`RETENTION_DAYS` are pruned by the writer.
"""

from __future__ import annotations

from typing import Final, Literal

import asyncpg

from x0_common.errors import X0Error
from x0_common.events.rag import IngestOutcome, Refusal
from x0_rag.adapters.rows import IngestPosition, database_errors

RETENTION_DAYS: Final = 7
# The writer prunes once every this many offsets of a partition.
PRUNE_EVERY: Final = 1_000
DEAD_LETTERED: Final = "dead_lettered"

# A real outcome replaces a dead-letter record of the same offset (a redelivery).
RECORD = """
INSERT INTO rag.ingest_outcomes (topic, partition, position, tenant, collection, status,
                                 code, message, document_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (topic, partition, position) DO UPDATE
SET tenant = EXCLUDED.tenant, collection = EXCLUDED.collection, status = EXCLUDED.status,
    code = EXCLUDED.code, message = EXCLUDED.message, document_id = EXCLUDED.document_id,
    recorded_at = now()
"""
# A dead letter never replaces an outcome already recorded (applied before the failure).
RECORD_DEAD_LETTER = """
INSERT INTO rag.ingest_outcomes (topic, partition, position, tenant, collection, status,
                                 code, message)
VALUES ($1, $2, $3, $4, $5, 'refused', $6, $7)
ON CONFLICT (topic, partition, position) DO NOTHING
"""
PRUNE = "DELETE FROM rag.ingest_outcomes WHERE recorded_at < now() - make_interval(days => $1)"
SELECT = """
SELECT o.status, o.code, o.message, o.document_id,
       (SELECT next_offset FROM rag.ingest_progress p
         WHERE p.topic = $1 AND p.partition = $2) AS next_offset
FROM (SELECT 1) AS one
LEFT JOIN rag.ingest_outcomes o
  ON o.topic = $1 AND o.partition = $2 AND o.position = $3
 AND o.tenant = $4 AND o.collection = $5
"""


def refusal_of(error: X0Error) -> Refusal:
    """The recorded reason of a refused message: ``details.reason`` when the error names
    one (``collection_not_found``, ``unstorable_text``, ...), else its code."""
    reason = error.details.get("reason")
    document_id = error.details.get("document_id")
    return Refusal(
        code=reason if isinstance(reason, str) else error.code,
        message=error.message,
        document_id=document_id if isinstance(document_id, str) else None,
    )


async def record(
    conn: asyncpg.Connection,
    position: IngestPosition,
    *,
    tenant: str,
    collection: str,
    refusal: Refusal | None,
) -> None:
    """Record the outcome (inside the caller's transaction); prune now and then."""
    status: Literal["applied", "refused"] = "applied" if refusal is None else "refused"
    await conn.execute(
        RECORD,
        position.topic,
        position.partition,
        position.offset,
        tenant,
        collection,
        status,
        refusal.code if refusal is not None else None,
        refusal.message if refusal is not None else None,
        refusal.document_id if refusal is not None else None,
    )
    if position.offset % PRUNE_EVERY == 0:
        await conn.execute(PRUNE, RETENTION_DAYS)


async def record_dead_letter(
    pool: asyncpg.Pool, position: IngestPosition, *, tenant: str, collection: str, reason: str
) -> None:
    """Record that the message went to the dead-letter topic (unless it has an outcome);
    ``Unavailable`` when the database does not take it."""
    async with database_errors("ingest_dead_letter"):
        await pool.execute(
            RECORD_DEAD_LETTER,
            position.topic,
            position.partition,
            position.offset,
            tenant,
            collection,
            DEAD_LETTERED,
            f"dead-lettered to {position.topic}.dlq ({reason}); an operator may publish it again",
        )


async def read(
    pool: asyncpg.Pool, position: IngestPosition, *, tenant: str, collection: str
) -> IngestOutcome | None:
    """The message's outcome as ``tenant`` sees it in ``collection``: applied or refused,
    ``pending`` while the writer has not reached it, None when no outcome is known (not
    this collection's message, pruned, or dead-lettered while the database was down)."""
    async with database_errors("ingest_outcome"):
        row = await pool.fetchrow(
            SELECT, position.topic, position.partition, position.offset, tenant, collection
        )
    assert row is not None  # one row whatever matches
    version = position.token
    if row["status"] is not None:
        refusal = (
            None
            if row["status"] == "applied"
            else Refusal(code=row["code"], message=row["message"], document_id=row["document_id"])
        )
        return IngestOutcome(
            version=version, collection=collection, status=row["status"], refusal=refusal
        )
    next_offset = row["next_offset"]
    if next_offset is None or position.offset >= next_offset:
        return IngestOutcome(version=version, collection=collection, status="pending")
    return None
