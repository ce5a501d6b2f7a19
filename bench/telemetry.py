"""Section ``telemetry``: ingest throughput and history-query latency of the telemetry worker.

Figures, each against a baseline measured in the same run:

- ``telemetry.ingest.throughput``: events/s from ``x0.telemetry.events`` into PostgreSQL
  (raw rows and per-minute rollups) and Redis (latest state), by the real worker
  process (``python -m x0_telemetry``, ingest group of its own). The worker is started
  and becomes ready (partitions assigned), then paused (SIGSTOP); the events are
  published (acks=all) while it is paused; the clock starts when it is resumed
  (SIGCONT) and stops when its group's committed offsets reach the end offsets
  recorded after publishing (the worker commits a batch only once it is durable in
  PostgreSQL and Redis). Events: ``EVENTS`` of ``NODES`` nodes, half heartbeats and
  half metrics with 3 neighbours each, 10 s apart per node, all in the last hours.
  Baseline: the same rows (``x0_telemetry.adapters.history.event_row``) written by
  ``asyncpg.copy_records_to_table`` into a scratch copy of ``telemetry.events`` (same
  columns, primary key and daily partitions), in batches of the worker's
  ``ingest_max_batch`` rows, one transaction each: no Kafka, no validation, no
  duplicate check, no rollups, no Redis. Target: at least 0.7 of it.
- ``telemetry.history.p50`` / ``.p99``: one node's 7-day history at a 1-hour step
  (168 points), as the worker's history handler reads it (``HistoryStore.history``,
  the same SQL, in this process: no Kafka round trip), served from the per-minute
  rollups, over a scratch schema seeded with SQL ``generate_series``: 7 days of
  rollups for ``HISTORY_NODES`` nodes, and 7 days of raw 10 s metrics events for
  ``RAW_NODES`` of them (their rollups are computed from those raw rows). Baseline: the
  same query planned on the raw 10 s events (what answering without rollups costs).
  Queries go to randomly chosen raw-seeded nodes, rollup and raw alternating, after a
  warm-up. Target: rollups at most half the raw time (p50), no slower (p99).

Scale is set by ``X0_BENCH_TELEMETRY_EVENTS``, ``X0_BENCH_TELEMETRY_HISTORY_NODES`` and
``X0_BENCH_TELEMETRY_RAW_NODES``; the records' baseline text states the scale used.
Scratch schemas are dropped at the end; the worker's bench rows (one mesh of its own)
are deleted from ``telemetry.*`` and Redis, so the dashboards do not count 1,000 fake
nodes for a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import asyncpg
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.harness import percentile
from bench.report import Record
from x0_common.contract import Telemetry
from x0_common.events.telemetry import (
    EVENTS_TOPIC,
    HistoryRequest,
    Neighbour,
    NodeHeartbeat,
    NodeMetrics,
)
from x0_common.kafka.clients import connection_options, ensure_topics
from x0_common.settings import CommonSettings, KafkaSettings
from x0_common.testing.kafka import commit_offsets, topic_partitions
from x0_common.testing.processes import service
from x0_telemetry.adapters.history import COLUMNS, HistoryStore, event_row
from x0_telemetry.adapters.partitions import Partitions
from x0_telemetry.domain.history import HistoryPlan, plan_history
from x0_telemetry.settings import TelemetrySettings

EVENTS: Final = int(os.environ.get("X0_BENCH_TELEMETRY_EVENTS", "60000"))
NODES: Final = 1_000
HISTORY_NODES: Final = int(os.environ.get("X0_BENCH_TELEMETRY_HISTORY_NODES", "1000"))
RAW_NODES: Final = int(os.environ.get("X0_BENCH_TELEMETRY_RAW_NODES", "200"))
HISTORY_DAYS: Final = 7
HISTORY_STEP: Final = 3_600
QUERY_WARMUP: Final = 20
QUERIES: Final = 200  # of each kind, alternating
THROUGHPUT_TARGET: Final = ">= 0.7"
P50_TARGET: Final = "<= 0.5"
P99_TARGET: Final = "<= 1.0"
MIGRATIONS: Final = Path(__file__).parents[1] / "services/telemetry/src/x0_telemetry/migrations"
SEED: Final = 20_261_127


# -- the events -------------------------------------------------------------------------


def bench_events(run: str, now: datetime) -> list[NodeHeartbeat | NodeMetrics]:
    """``EVENTS`` events of ``NODES`` nodes, 10 s apart per node, ending before ``now``."""
    rng = random.Random(SEED)
    mesh = f"bench-{run}"
    rounds = -(-EVENTS // NODES)
    first = now.replace(microsecond=0) - timedelta(seconds=10 * rounds + 60)
    events: list[NodeHeartbeat | NodeMetrics] = []
    for i in range(EVENTS):
        node_number, round_number = i % NODES, i // NODES
        node = f"bench-{run}-{node_number:04d}"
        at = first + timedelta(seconds=10 * round_number, milliseconds=node_number)
        if round_number % 2:
            events.append(
                NodeHeartbeat(node_id=node, mesh_id=mesh, timestamp=at, software_version="1.4.2")
            )
            continue
        neighbours = [
            Neighbour(
                node_id=f"bench-{run}-{(node_number + k) % NODES:04d}",
                link_quality=round(rng.random(), 3),
                rtt_ms=round(rng.uniform(1, 50), 2),
            )
            for k in (1, 2, 3)
        ]
        events.append(
            NodeMetrics(
                node_id=node,
                mesh_id=mesh,
                timestamp=at,
                cpu=round(rng.random(), 3),
                memory=round(rng.random(), 3),
                rtt_ms=round(rng.uniform(1, 50), 2),
                packet_loss=round(rng.random() / 100, 4),
                throughput_bps=round(rng.uniform(1e5, 1e8)),
                neighbours=neighbours,
            )
        )
    return events


async def publish(kafka: KafkaSettings, events: list[NodeHeartbeat | NodeMetrics]) -> None:
    """Every event to ``x0.telemetry.events``, keyed by node, acknowledged by all replicas."""
    producer = AIOKafkaProducer(
        **connection_options(kafka),
        acks="all",
        enable_idempotence=True,
        linger_ms=20,
        max_batch_size=512 * 1024,
    )
    await producer.start()
    try:
        for start in range(0, len(events), 5_000):
            deliveries = []
            for event in events[start : start + 5_000]:
                kind = (
                    Telemetry.HEARTBEAT.message_type
                    if event.kind == "heartbeat"
                    else (Telemetry.METRICS.message_type)
                )
                deliveries.append(
                    await producer.send(
                        EVENTS_TOPIC,
                        event.model_dump_json().encode(),
                        key=event.node_id.encode(),
                        headers=[("x0-type", kind.encode())],
                    )
                )
            await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def end_offsets(
    kafka: KafkaSettings, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The log-end offset of each partition."""
    consumer = AIOKafkaConsumer(**connection_options(kafka))
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


@contextlib.contextmanager
def telemetry_worker(environment: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """A telemetry worker process, ready; yields it and its HTTP port; stops it after."""
    with service(
        "x0_telemetry", environment=environment, port_variable="X0_TELEMETRY_PORT"
    ) as running:
        try:
            yield running.process, running.port
        finally:
            # A worker the benchmark paused (SIGSTOP) would not act on SIGTERM.
            with contextlib.suppress(ProcessLookupError):
                running.process.send_signal(signal.SIGCONT)


def _metric_sum(port: int, name: str) -> float:
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


async def wait_committed(
    kafka: KafkaSettings, group: str, target: dict[TopicPartition, int], timeout: float
) -> None:
    """Poll the group's committed offsets until each reaches ``target``."""
    admin = AIOKafkaAdminClient(**connection_options(kafka))
    await admin.start()
    try:
        deadline = time.monotonic() + timeout
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            if all(
                p in committed and committed[p].offset >= offset
                for p, offset in target.items()
                if offset > 0
            ):
                return
            if time.monotonic() > deadline:
                msg = f"the worker did not commit every event within {timeout:.0f} s"
                raise RuntimeError(msg)
            await asyncio.sleep(0.01)
    finally:
        await admin.close()


# -- scratch schemas --------------------------------------------------------------------


async def create_scratch(pool: asyncpg.Pool, schema: str, days: list[date]) -> Partitions:
    """The telemetry tables, as migrated, in ``schema``, with partitions for ``days``."""
    sql = "\n".join(path.read_text() for path in sorted(MIGRATIONS.glob("*.sql")))
    sql = sql.replace("telemetry.", f"{schema}.")
    async with pool.acquire() as connection:
        await connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        await connection.execute(sql)
    partitions = Partitions(pool, retention_days=HISTORY_DAYS + 1, ahead_days=1, schema=schema)
    await partitions.ensure(days)
    return partitions


async def raw_copy_throughput(
    pool: asyncpg.Pool, rows: list[tuple[object, ...]], batch: int, days: list[date]
) -> float:
    """Rows/s of ``copy_records_to_table`` into a scratch copy of ``telemetry.events``."""
    schema = f"bench_telemetry_copy_{uuid.uuid4().hex[:8]}"
    await create_scratch(pool, schema, days)
    try:
        async with pool.acquire() as connection:
            started = time.perf_counter()
            for start in range(0, len(rows), batch):
                await connection.copy_records_to_table(
                    "events",
                    records=rows[start : start + batch],
                    columns=COLUMNS,
                    schema_name=schema,
                )
            elapsed = time.perf_counter() - started
            stored = await connection.fetchval(f'SELECT count(*) FROM "{schema}".events')  # noqa: S608
        assert stored == len(rows), (stored, len(rows))
        return len(rows) / elapsed
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def cleanup_worker_rows(pool: asyncpg.Pool, redis_url: str, run: str) -> None:
    """Delete the bench's nodes from ``telemetry.*`` and Redis."""
    pattern = f"bench-{run}-%"
    await pool.execute("DELETE FROM telemetry.events WHERE node_id LIKE $1", pattern)
    await pool.execute("DELETE FROM telemetry.rollup_1m WHERE node_id LIKE $1", pattern)
    client = aioredis.from_url(redis_url)
    try:
        # The bench publishes without a principal: its nodes are the default tenant's.
        tenant = "x0:telemetry:default:"
        keys = [key async for key in client.scan_iter(f"{tenant}node:bench-{run}-*")]
        for start in range(0, len(keys), 1_000):
            await client.delete(*keys[start : start + 1_000])
        await client.delete(f"{tenant}mesh:bench-{run}")
        await client.zrem(f"{tenant}meshes", f"bench-{run}")
        await client.zrem(f"{tenant}nodes", *[f"bench-{run}-{i:04d}" for i in range(NODES)])
    finally:
        await client.aclose()


# -- the two measurements ---------------------------------------------------------------


async def measure_ingest(settings: CommonSettings, pool: asyncpg.Pool) -> list[Record]:
    """Worker throughput against the raw copy baseline."""
    kafka = settings.kafka
    worker_settings = TelemetrySettings()
    run = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    events = bench_events(run, now)
    rows = [event_row(event) for event in events]
    days = sorted({event.timestamp.date() for event in events} | {now.date()})

    await ensure_topics(
        kafka, [EVENTS_TOPIC, f"{EVENTS_TOPIC}.dlq"], partitions=worker_settings.partitions
    )
    partitions = await topic_partitions(kafka.bootstrap_servers, EVENTS_TOPIC)
    group = f"x0-telemetry-ingest-bench-{run}"
    await commit_offsets(kafka.bootstrap_servers, group, await end_offsets(kafka, partitions))
    environment = {
        "X0_TELEMETRY_INGEST_GROUP_ID": group,
        "X0_TELEMETRY_QUERY_GROUP_ID": f"x0-telemetry-queries-bench-{run}",
        # Paused while the events are published: the group must not expire meanwhile.
        "X0_KAFKA__SESSION_TIMEOUT_MS": "120000",
        "X0_KAFKA__HEARTBEAT_INTERVAL_MS": "3000",
    }
    try:
        with telemetry_worker(environment) as (process, port):
            process.send_signal(signal.SIGSTOP)
            try:
                await publish(kafka, events)
                target = await end_offsets(kafka, partitions)
            finally:
                process.send_signal(signal.SIGCONT)
            started = time.perf_counter()
            await wait_committed(kafka, group, target, timeout=600)
            elapsed = time.perf_counter() - started
            batches = _metric_sum(port, "x0_telemetry_ingest_batch_size_count")
            stored = await pool.fetchval(
                "SELECT count(*) FROM telemetry.events WHERE node_id LIKE $1", f"bench-{run}-%"
            )
        assert stored == len(events), f"the worker stored {stored} of {len(events)} events"
        throughput = len(events) / elapsed
        print(
            f"worker: {len(events)} events of {NODES} nodes in {elapsed:.2f} s = "
            f"{throughput:.0f} events/s (~{len(events) / max(batches, 1):.0f} events per batch)",
            flush=True,
        )
        raw = await raw_copy_throughput(pool, rows, worker_settings.ingest_max_batch, days)
        print(f"raw copy_records_to_table: {raw:.0f} rows/s", flush=True)
    finally:
        await cleanup_worker_rows(pool, settings.redis.url.get_secret_value(), run)
    return [
        Record(
            name="telemetry.ingest.throughput",
            value=throughput,
            unit="events/s",
            baseline=(
                f"raw asyncpg copy_records_to_table of the same {len(events)} rows "
                f"(batches of {worker_settings.ingest_max_batch}, same partitioned table)"
            ),
            baseline_value=raw,
            target=THROUGHPUT_TARGET,
        )
    ]


async def seed_history(pool: asyncpg.Pool, schema: str, end: datetime) -> None:
    """7 days of raw 10 s metrics for RAW_NODES nodes, rollups for HISTORY_NODES.

    Rows go in time-major order (every node's row of one instant, then the next
    instant), as the ingest writes them, so one node's rows are spread over the heap
    as they would be in production; rollups of the raw-seeded nodes are computed from
    their raw rows, the others' are synthetic.
    """
    s = f'"{schema}"'
    started = time.perf_counter()
    for day in range(HISTORY_DAYS):
        first = end - timedelta(days=HISTORY_DAYS - day)
        await pool.execute(
            f"INSERT INTO {s}.events (node_id, ts, type, mesh_id, cpu, memory, rtt_ms,"  # noqa: S608
            " packet_loss, throughput_bps)"
            " SELECT 'node-' || lpad(n::text, 4, '0'), t, 'metrics', 'bench',"
            " 0.5 + 0.4 * sin(extract(epoch FROM t) / 3600 + n),"
            " 0.5 + 0.2 * cos(extract(epoch FROM t) / 7200 + n),"
            " 20 + 10 * sin(extract(epoch FROM t) / 600 + n), 0.01,"
            " 1e6 * (2 + sin(extract(epoch FROM t) / 900 + n))"
            " FROM generate_series($2::timestamptz, $3, '10 s') t,"
            # The reference to t keeps t the outer loop: rows come out time-major.
            " LATERAL generate_series(1, $1 + (t IS NULL)::int) n",
            RAW_NODES,
            first,
            first + timedelta(days=1) - timedelta(seconds=10),
        )
        await pool.execute(
            f"INSERT INTO {s}.rollup_1m SELECT * FROM ("  # noqa: S608
            " SELECT node_id, date_bin('1 minute', ts, timestamptz 'epoch') AS minute,"
            " count(*)::int, sum(cpu), sum(memory), sum(rtt_ms), sum(packet_loss),"
            f" sum(throughput_bps) FROM {s}.events WHERE ts >= $3 AND ts < $4 GROUP BY 1, 2"
            " UNION ALL"
            " SELECT 'node-' || lpad(n::text, 4, '0'), m, 6,"
            " 6 * (0.5 + 0.4 * sin(extract(epoch FROM m) / 3600 + n)), 3.0, 120.0, 0.06, 1.2e7"
            " FROM generate_series($3::timestamptz, $4 - interval '1 minute', '1 minute') m,"
            " LATERAL generate_series($1::int, $2) n"
            ") r ORDER BY minute, node_id",
            RAW_NODES + 1,
            HISTORY_NODES,
            first,
            first + timedelta(days=1),
        )
    await pool.execute(f"ANALYZE {s}.events")
    await pool.execute(f"ANALYZE {s}.rollup_1m")
    raw_rows = await pool.fetchval(f"SELECT count(*) FROM {s}.events")  # noqa: S608
    rollup_rows = await pool.fetchval(f"SELECT count(*) FROM {s}.rollup_1m")  # noqa: S608
    print(
        f"seeded {raw_rows} raw rows ({RAW_NODES} nodes at 10 s) and {rollup_rows} rollup rows "
        f"({HISTORY_NODES} nodes at 1 min) over {HISTORY_DAYS} days in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )


async def measure_history(pool: asyncpg.Pool) -> list[Record]:
    """History p50/p99 from rollups against the same query on raw events."""
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    schema = f"bench_telemetry_history_{uuid.uuid4().hex[:8]}"
    days = [(end - timedelta(days=d)).date() for d in range(HISTORY_DAYS + 1)]
    await create_scratch(pool, schema, days)
    try:
        await seed_history(pool, schema, end)
        store = HistoryStore(pool, schema=schema)
        rng = random.Random(SEED)

        def plans(node: str) -> tuple[HistoryPlan, HistoryPlan]:
            rollup = plan_history(
                HistoryRequest(
                    node_id=node,
                    start=end - timedelta(days=HISTORY_DAYS),
                    end=end,
                    step_seconds=HISTORY_STEP,
                )
            )
            raw = HistoryPlan(
                node_id=node,
                source="raw",
                step_seconds=rollup.step_seconds,
                range_start=rollup.range_start,
                range_end=rollup.range_end,
            )
            return rollup, raw

        # Correctness first: both paths answer the same points.
        check_rollup, check_raw = plans("node-0001")
        a, b = await store.history(check_rollup), await store.history(check_raw)
        assert len(a) == HISTORY_DAYS * 24, len(a)
        assert [(p.timestamp, p.samples) for p in a] == [(p.timestamp, p.samples) for p in b]
        assert all(abs(x.cpu - y.cpu) < 1e-9 for x, y in zip(a, b, strict=True))

        timings: dict[str, list[float]] = {"rollup": [], "raw": []}
        for i in range(QUERY_WARMUP + QUERIES):
            rollup, raw = plans(f"node-{rng.randint(1, RAW_NODES):04d}")
            order = [("rollup", rollup), ("raw", raw)]
            if i % 2:
                order.reverse()
            for kind, plan in order:
                started = time.perf_counter()
                points = await store.history(plan)
                elapsed = time.perf_counter() - started
                assert len(points) == HISTORY_DAYS * 24
                if i >= QUERY_WARMUP:
                    timings[kind].append(elapsed * 1000)
    finally:
        await pool.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    figures = {
        (kind, q): percentile(samples, q) for kind, samples in timings.items() for q in (0.5, 0.99)
    }
    print(
        "history, 7 days at 1 h (168 points): rollups p50 {:.2f} ms p99 {:.2f} ms; "
        "raw 10 s events p50 {:.2f} ms p99 {:.2f} ms".format(
            figures[("rollup", 0.5)],
            figures[("rollup", 0.99)],
            figures[("raw", 0.5)],
            figures[("raw", 0.99)],
        ),
        flush=True,
    )
    scale = f"7 days; rollups of {HISTORY_NODES} nodes at 1 min, raw of {RAW_NODES} nodes at 10 s"
    return [
        Record(
            name=f"telemetry.history.{label}",
            value=figures[("rollup", q)],
            unit="ms",
            baseline=f"same query on raw 10 s events, {label} ({scale})",
            baseline_value=figures[("raw", q)],
            target=target,
        )
        for label, q, target in (("p50", 0.5, P50_TARGET), ("p99", 0.99, P99_TARGET))
    ]


async def run(settings: CommonSettings) -> list[Record]:
    """Measure and return the telemetry records."""
    pool = await asyncpg.create_pool(
        settings.postgres.dsn.get_secret_value(), min_size=1, max_size=2
    )
    assert pool is not None
    try:
        records = await measure_ingest(settings, pool)
        records += await measure_history(pool)
    finally:
        await pool.close()
    return records
