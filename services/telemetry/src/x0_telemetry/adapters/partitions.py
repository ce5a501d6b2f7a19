"""Daily partitions of the history tables: created ahead, dropped after retention.

``telemetry.events`` and ``telemetry.rollup_1m`` are partitioned by RANGE on time,
one partition per UTC day, named ``<table>_YYYYMMDD``. Maintenance (at start-up and
every ``maintenance_interval_seconds``) creates the partitions from the first day of
the retention window to ``partitions_ahead_days`` after today, and drops every
partition that ends at or before ``now - retention_days``: retention drops whole
tables, it never DELETEs rows (no dead tuples, no vacuum debt). The ingest also
creates the partition of any day it is about to write that it has not seen yet,
so a batch never waits for the next maintenance run.

Replicas serialise maintenance through a transaction-level advisory lock, and
``lock_timeout`` keeps a DROP from queueing behind a long query (the next run
retries). The worker runs :meth:`Partitions.maintain` as a background job
(``x0_common.worker.Periodic``): once at start-up, failing it if the database
refuses, then every ``maintenance_interval_seconds``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta

import asyncpg

logger = logging.getLogger(__name__)

PARENTS = ("events", "rollup_1m")
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]*")
_SUFFIX = re.compile(r"_(\d{8})$")


def partition_name(parent: str, day: date) -> str:
    """The partition of ``parent`` holding ``day`` (UTC)."""
    return f"{parent}_{day:%Y%m%d}"


def _lock_id(schema: str) -> int:
    digest = hashlib.sha256(f"x0-telemetry-partitions:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big") - (1 << 63)


class Partitions:
    """Creates and drops the daily partitions of one schema's history tables."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        retention_days: int,
        ahead_days: int,
        schema: str = "telemetry",
        on_drop: Callable[[str], None] | None = None,
    ) -> None:
        if not _SCHEMA.fullmatch(schema):
            msg = f"not a plain schema name: {schema!r}"
            raise ValueError(msg)
        self._pool = pool
        self._schema = schema
        self._retention = timedelta(days=retention_days)
        self._ahead = ahead_days
        self._on_drop = on_drop
        self._known: set[date] = set()

    def window(self, now: datetime) -> list[date]:
        """The days that must have partitions at ``now``."""
        first = (now - self._retention).astimezone(UTC).date()
        last = now.astimezone(UTC).date() + timedelta(days=self._ahead)
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    async def ensure(self, days: Iterable[date]) -> None:
        """Create the partitions of ``days`` that this process has not seen yet."""
        missing = sorted(set(days) - self._known)
        if not missing:
            return
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _lock_id(self._schema))
            for day in missing:
                start = datetime(day.year, day.month, day.day, tzinfo=UTC)
                for parent in PARENTS:
                    # Identifiers and bounds come from our own names and dates, not input.
                    await connection.execute(
                        f'CREATE TABLE IF NOT EXISTS "{self._schema}".'
                        f'"{partition_name(parent, day)}" PARTITION OF "{self._schema}".{parent}'
                        f" FOR VALUES FROM ('{start.isoformat()}')"
                        f" TO ('{(start + timedelta(days=1)).isoformat()}')"
                    )
        self._known.update(missing)

    async def maintain(self, now: datetime | None = None) -> list[str]:
        """Create the window's partitions and drop expired ones; return the dropped names."""
        now = now or datetime.now(UTC)
        await self.ensure(self.window(now))
        cutoff = now - self._retention
        dropped: list[str] = []
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SET LOCAL lock_timeout = '5s'")
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _lock_id(self._schema))
            for parent in PARENTS:
                for name in await self._children(connection, parent):
                    day = _day_of(name)
                    if day is None:
                        continue
                    end = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
                    if end <= cutoff:
                        await connection.execute(f'DROP TABLE "{self._schema}"."{name}"')
                        dropped.append(name)
                        self._known.discard(day)
        for name in dropped:
            logger.info("partition dropped by retention", extra={"partition": name})
            if self._on_drop is not None:
                self._on_drop(name)
        return dropped

    async def _children(self, connection: asyncpg.Connection, parent: str) -> list[str]:
        rows = await connection.fetch(
            "SELECT c.relname FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid"
            " JOIN pg_class p ON p.oid = i.inhparent"
            " JOIN pg_namespace n ON n.oid = p.relnamespace"
            " WHERE n.nspname = $1 AND p.relname = $2",
            self._schema,
            parent,
        )
        return sorted(row["relname"] for row in rows)


def _day_of(name: str) -> date | None:
    match = _SUFFIX.search(name)
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").replace(tzinfo=UTC).date()
    except ValueError:
        return None
