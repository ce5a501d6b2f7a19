"""``gateway.audit_log``: append records, keep a partition per month, read by filter.

Partitions are months (``audit_log_y2026m05``), made before a record needs one; a
month is dropped once its end is older than the retention. Maintenance runs under an
advisory lock, so replicas never race on the DDL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import asyncpg

from x0_common.events.audit import AuditRecord, Outcome

_COLUMNS: Final = (
    "id, request_id, at, stage, operation, outcome, status, code, tenant, subject,"
    " resource_type, resource, trace_id, client_address"
)
_INSERT: Final = (
    f"INSERT INTO gateway.audit_log ({_COLUMNS})"  # noqa: S608 - constant column list
    " SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[],"
    " $6::text[], $7::smallint[], $8::text[], $9::text[], $10::text[], $11::text[],"
    " $12::text[], $13::text[], $14::text[])"
    " ON CONFLICT DO NOTHING"
)
_PARTITIONS: Final = (
    "SELECT child.relname FROM pg_inherits"
    " JOIN pg_class child ON child.oid = pg_inherits.inhrelid"
    " JOIN pg_class parent ON parent.oid = pg_inherits.inhparent"
    " JOIN pg_namespace ns ON ns.oid = parent.relnamespace"
    " WHERE ns.nspname = 'gateway' AND parent.relname = 'audit_log'"
)
# pg_advisory_xact_lock's key for the partitions' DDL ("x0audit" as a number).
_LOCK: Final = 0x7830_6175_6469_74


def month_of(moment: datetime) -> date:
    """The first day of ``moment``'s month (UTC)."""
    return moment.astimezone(UTC).date().replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after ``month``."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def partition_name(month: date) -> str:
    """``audit_log_yYYYYmMM``: a name built from digits only, safe in DDL."""
    return f"audit_log_y{month.year:04d}m{month.month:02d}"


def month_of_partition(name: str) -> date | None:
    """The month a partition holds, or None for a table not named by this module."""
    if len(name) != 18 or not name.startswith("audit_log_y") or name[15] != "m":
        return None
    try:
        return date(int(name[11:15]), int(name[16:18]), 1)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of ``GET /v1/audit``; every one optional, newest records first."""

    since: datetime | None = None
    until: datetime | None = None
    subject: str | None = None
    tenant: str | None = None
    # The stored forms a resource may take: its id as given, and its digest.
    resources: Sequence[str] = ()
    outcome: Outcome | None = None
    operation: str | None = None
    # Keyset pagination: records strictly older than (at, id).
    before: tuple[datetime, uuid.UUID] | None = None
    limit: int = 100


class AuditLog:
    """The gateway's audit table."""

    def __init__(self, pool: asyncpg.Pool, *, retention_days: int) -> None:
        self._pool = pool
        self._retention = timedelta(days=retention_days)
        self._months: set[date] = set()

    async def append(self, records: Sequence[AuditRecord]) -> None:
        """Store ``records``; those already stored (same id and time) are skipped."""
        if not records:
            return
        await self.ensure_months({month_of(record.at) for record in records})
        columns: list[list[Any]] = [[] for _ in range(14)]
        for record in records:
            values = (
                record.id, record.request_id, record.at, record.stage, record.operation,
                record.outcome, record.status, record.code, record.tenant, record.subject,
                record.resource_type, record.resource, record.trace_id, record.client_address,
            )  # fmt: skip
            for column, value in zip(columns, values, strict=True):
                column.append(value)
        await self._pool.execute(_INSERT, *columns)

    async def ensure_months(self, months: Iterable[date]) -> None:
        """Create the partitions of ``months`` that do not exist yet."""
        missing = set(months) - self._months
        if not missing:
            return
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            existing = {month_of_partition(row[0]) for row in await connection.fetch(_PARTITIONS)}
            for month in sorted(missing - existing):
                name = partition_name(month)
                start, end = month.isoformat(), next_month(month).isoformat()
                await connection.execute(
                    f"CREATE TABLE gateway.{name} PARTITION OF gateway.audit_log"
                    f" FOR VALUES FROM ('{start}') TO ('{end}');"
                    f" CREATE TRIGGER {name}_no_truncate BEFORE TRUNCATE ON gateway.{name}"
                    " FOR EACH STATEMENT EXECUTE FUNCTION gateway.audit_log_refuse()"
                )
        self._months |= missing

    async def maintain(self, now: datetime | None = None) -> list[str]:
        """This month's and next month's partitions made; months past the retention
        dropped. Returns the dropped partitions' names."""
        now = now or datetime.now(UTC)
        this_month = month_of(now)
        await self.ensure_months({this_month, next_month(this_month)})
        cutoff = (now - self._retention).date()
        dropped = []
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _LOCK)
            for row in await connection.fetch(_PARTITIONS):
                month = month_of_partition(row[0])
                if month is not None and next_month(month) <= cutoff:
                    await connection.execute(f"DROP TABLE gateway.{partition_name(month)}")
                    self._months.discard(month)
                    dropped.append(row[0])
        return dropped

    def expired(self, record: AuditRecord, now: datetime | None = None) -> bool:
        """True for a record older than the retention (a late replay): not stored."""
        return record.at < (now or datetime.now(UTC)) - self._retention

    async def find(self, query: AuditQuery) -> list[AuditRecord]:
        """The records that match ``query``, newest first, at most ``limit``."""
        conditions: list[str] = []
        arguments: list[Any] = []

        def where(condition: str, *values: Any) -> None:
            arguments.extend(values)
            numbers = range(len(arguments) - len(values) + 1, len(arguments) + 1)
            conditions.append(condition.format(*(f"${n}" for n in numbers)))

        if query.since is not None:
            where("at >= {}", query.since)
        if query.until is not None:
            where("at < {}", query.until)
        if query.subject is not None:
            where("subject = {}", query.subject)
        if query.tenant is not None:
            where("tenant = {}", query.tenant)
        if query.resources:
            where("resource = ANY({}::text[])", list(query.resources))
        if query.outcome is not None:
            where("outcome = {}", query.outcome)
        if query.operation is not None:
            where("operation = {}", query.operation)
        if query.before is not None:
            where("(at, id) < ({}, {})", *query.before)
        sql = f"SELECT {_COLUMNS} FROM gateway.audit_log"  # noqa: S608 - placeholders only
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        arguments.append(query.limit)
        sql += f" ORDER BY at DESC, id DESC LIMIT ${len(arguments)}"
        rows = await self._pool.fetch(sql, *arguments)
        return [AuditRecord.model_validate(dict(row)) for row in rows]
