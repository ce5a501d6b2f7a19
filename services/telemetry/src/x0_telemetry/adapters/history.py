"""PostgreSQL history: raw events and per-minute rollups, written in one transaction per batch.

A batch is copied (``copy_records_to_table``, binary COPY) into a temporary staging
table that empties itself at commit, then one statement moves it:
``INSERT INTO events ... ON CONFLICT DO NOTHING RETURNING``, and a second
data-modifying CTE adds to ``rollup_1m`` only what that insert returned (the rows it
really inserted), so a redelivered batch, or one event sent twice, adds nothing.
Both tables change in one transaction: the rollups never lag or lead the raw rows.
Rows are keyed by tenant and node (``migrations/002_tenants.sql``): the same node id in
two tenants is two nodes, and a history is read for the caller's tenant only.
(COPY into staging measured ~15 % faster than ``INSERT ... SELECT FROM unnest(...)``
for batches of 1,000.)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from x0_common.events.telemetry import FIGURES, HistoryPoint, NodeHeartbeat, NodeMetrics
from x0_common.postgres import unavailable_when_transient
from x0_common.principal import DEFAULT_TENANT
from x0_telemetry.domain.history import HistoryPlan
from x0_telemetry.domain.state import neighbours_json

_SCHEMA = re.compile(r"[a-z_][a-z0-9_]*")

COLUMNS = (
    "tenant",
    "node_id",
    "ts",
    "type",
    "mesh_id",
    "status",
    "software_version",
    "cpu",
    "memory",
    "rtt_ms",
    "packet_loss",
    "throughput_bps",
    "neighbours",
)

_WRITE = """
WITH inserted AS (
    INSERT INTO {s}.events ({columns})
    SELECT {columns} FROM pg_temp.{staging}
    ON CONFLICT DO NOTHING
    RETURNING tenant, node_id, ts, type, cpu, memory, rtt_ms, packet_loss, throughput_bps
), rolled AS (
    INSERT INTO {s}.rollup_1m AS r
        (tenant, node_id, minute, samples, cpu_sum, memory_sum, rtt_ms_sum, packet_loss_sum,
         throughput_bps_sum)
    SELECT tenant, node_id, date_bin('1 minute', ts, timestamptz 'epoch'), count(*), sum(cpu),
           sum(memory), sum(rtt_ms), sum(packet_loss), sum(throughput_bps)
    FROM inserted WHERE type = 'metrics'
    GROUP BY 1, 2, 3
    ON CONFLICT (tenant, node_id, minute) DO UPDATE SET
        samples = r.samples + excluded.samples,
        cpu_sum = r.cpu_sum + excluded.cpu_sum,
        memory_sum = r.memory_sum + excluded.memory_sum,
        rtt_ms_sum = r.rtt_ms_sum + excluded.rtt_ms_sum,
        packet_loss_sum = r.packet_loss_sum + excluded.packet_loss_sum,
        throughput_bps_sum = r.throughput_bps_sum + excluded.throughput_bps_sum
)
SELECT type, count(*)::int AS inserted FROM inserted GROUP BY type
"""

# Once per connection in effect (a no-op afterwards); rows vanish at each commit.
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS {staging} (LIKE {s}.events INCLUDING DEFAULTS)"
    " ON COMMIT DELETE ROWS"
)

_ROLLUP_HISTORY = """
SELECT date_bin($4, minute, timestamptz 'epoch') AS bucket,
       sum(samples)::int AS samples,
       sum(cpu_sum) / sum(samples) AS cpu,
       sum(memory_sum) / sum(samples) AS memory,
       sum(rtt_ms_sum) / sum(samples) AS rtt_ms,
       sum(packet_loss_sum) / sum(samples) AS packet_loss,
       sum(throughput_bps_sum) / sum(samples) AS throughput_bps
FROM {s}.rollup_1m
WHERE tenant = $5 AND node_id = $1 AND minute >= $2 AND minute < $3
GROUP BY bucket ORDER BY bucket
"""

_RAW_HISTORY = """
SELECT date_bin($4, ts, timestamptz 'epoch') AS bucket,
       count(*)::int AS samples,
       avg(cpu) AS cpu,
       avg(memory) AS memory,
       avg(rtt_ms) AS rtt_ms,
       avg(packet_loss) AS packet_loss,
       avg(throughput_bps) AS throughput_bps
FROM {s}.events
WHERE tenant = $5 AND node_id = $1 AND type = 'metrics' AND ts >= $2 AND ts < $3
GROUP BY bucket ORDER BY bucket
"""


def event_row(
    event: NodeHeartbeat | NodeMetrics, tenant: str = DEFAULT_TENANT
) -> tuple[object, ...]:
    """The ``events`` row of one event of ``tenant``, in :data:`COLUMNS` order."""
    if isinstance(event, NodeHeartbeat):
        return (
            tenant,
            event.node_id,
            event.timestamp,
            "heartbeat",
            event.mesh_id,
            event.status,
            event.software_version,
            None,
            None,
            None,
            None,
            None,
            None,
        )
    return (
        tenant,
        event.node_id,
        event.timestamp,
        "metrics",
        event.mesh_id,
        None,
        None,
        *(getattr(event, name) for name in FIGURES),
        neighbours_json(event),
    )


class HistoryStore:
    """Writes batches of events and reads one node's history."""

    def __init__(self, pool: asyncpg.Pool, *, schema: str = "telemetry") -> None:
        if not _SCHEMA.fullmatch(schema):
            msg = f"not a plain schema name: {schema!r}"
            raise ValueError(msg)
        self._pool = pool
        self._staging = f"x0_staging_{schema}"
        self._create_staging = _STAGING.format(s=schema, staging=self._staging)
        self._write = _WRITE.format(s=schema, columns=", ".join(COLUMNS), staging=self._staging)
        self._rollup = _ROLLUP_HISTORY.format(s=schema)
        self._raw = _RAW_HISTORY.format(s=schema)

    async def write(self, rows: Sequence[tuple[object, ...]]) -> dict[str, int]:
        """Insert ``rows`` (from :func:`event_row`); return how many of each type were new."""
        if not rows:
            return {}
        async with (
            unavailable_when_transient("telemetry history", "write"),
            self._pool.acquire() as connection,
            connection.transaction(),
        ):
            await connection.execute(self._create_staging)
            await connection.copy_records_to_table(self._staging, records=rows, columns=COLUMNS)
            records = await connection.fetch(self._write)
        return {record["type"]: record["inserted"] for record in records}

    async def history(
        self, plan: HistoryPlan, *, tenant: str = DEFAULT_TENANT
    ) -> list[HistoryPoint]:
        """The points of ``plan`` for ``tenant``'s node (buckets without metrics events
        are left out)."""
        query = self._rollup if plan.source == "rollup" else self._raw
        async with unavailable_when_transient("telemetry history", "history"):
            records = await self._pool.fetch(
                query,
                plan.node_id,
                plan.range_start,
                plan.range_end,
                timedelta(seconds=plan.step_seconds),
                tenant,
            )
        return [
            HistoryPoint.model_validate(
                {
                    "timestamp": record["bucket"],
                    "samples": record["samples"],
                    **{name: record[name] for name in FIGURES},
                }
            )
            for record in records
        ]
