"""The stores against the real PostgreSQL and Redis, in process (schema ``telemetry``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis

from x0_common.events.telemetry import HistoryRequest, NodeHeartbeat, NodeMetrics
from x0_common.testing.stack import StackEndpoints
from x0_telemetry.adapters.history import HistoryStore, event_row
from x0_telemetry.adapters.latest import LatestStore
from x0_telemetry.adapters.partitions import Partitions, partition_name
from x0_telemetry.domain.history import HistoryPlan, plan_history
from x0_telemetry.domain.state import epoch_ms, latest_update

pytestmark = pytest.mark.integration

MIGRATIONS = Path(__file__).parents[1] / "src" / "x0_telemetry" / "migrations"


@pytest.fixture
async def pool(stack: StackEndpoints) -> AsyncIterator[asyncpg.Pool]:
    async with stack.migrated_pool("telemetry", MIGRATIONS, max_size=3) as pool:
        yield pool


@pytest.fixture
async def redis_client(stack: StackEndpoints) -> AsyncIterator[aioredis.Redis]:
    async with stack.redis(decode_responses=True) as client:
        yield client


def _metrics(node: str, at: datetime, cpu: float) -> NodeMetrics:
    return NodeMetrics(
        node_id=node,
        mesh_id="mesh-store",
        timestamp=at,
        cpu=cpu,
        memory=0.5,
        rtt_ms=10.0 * cpu,
        packet_loss=0.0,
        throughput_bps=1000.0 * cpu,
    )


async def test_a_batch_written_twice_is_counted_once(pool: asyncpg.Pool) -> None:
    node = f"store-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    partitions = Partitions(pool, retention_days=7, ahead_days=1)
    await partitions.ensure({at.date()})
    store = HistoryStore(pool)
    batch = [_metrics(node, at + timedelta(seconds=10 * i), 0.1 * i) for i in range(6)]
    batch.append(_metrics(node, at, 0.9))  # the same key twice in one batch: the first wins
    rows = [event_row(e) for e in batch]

    assert await store.write(rows) == {"metrics": 6}
    assert await store.write(rows) == {}
    samples, cpu_sum = await pool.fetchrow(
        "SELECT samples, cpu_sum FROM telemetry.rollup_1m WHERE node_id = $1", node
    )
    assert samples == 6
    assert cpu_sum == pytest.approx(sum(0.1 * i for i in range(6)))


async def test_rollup_and_raw_plans_give_the_same_points(pool: asyncpg.Pool) -> None:
    node = f"plans-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    partitions = Partitions(pool, retention_days=7, ahead_days=1)
    await partitions.ensure({start.date(), (start + timedelta(minutes=40)).date()})
    store = HistoryStore(pool)
    # 10 s resolution with gaps, over 40 minutes.
    batch = [
        _metrics(node, start + timedelta(seconds=10 * i), (i % 11) / 10)
        for i in range(240)
        if i % 7 != 3
    ]
    await store.write([event_row(e) for e in batch])
    request = HistoryRequest(
        node_id=node,
        start=start + timedelta(seconds=30),
        end=start + timedelta(minutes=40),
        step_seconds=300,
    )
    rollup_plan = plan_history(request)
    assert rollup_plan.source == "rollup"
    assert rollup_plan.range_start == start  # aligned down to the 5-minute bucket
    raw_plan = HistoryPlan(
        node_id=node,
        source="raw",
        step_seconds=300,
        range_start=rollup_plan.range_start,
        range_end=rollup_plan.range_end,
    )
    from_rollups = await store.history(rollup_plan)
    from_raw = await store.history(raw_plan)
    assert len(from_rollups) == 8
    assert [p.timestamp for p in from_rollups] == [p.timestamp for p in from_raw]
    assert sum(p.samples for p in from_rollups) == len(batch)
    for a, b in zip(from_rollups, from_raw, strict=True):
        assert a.samples == b.samples
        assert a.cpu == pytest.approx(b.cpu)
        assert a.rtt_ms == pytest.approx(b.rtt_ms)
        assert a.throughput_bps == pytest.approx(b.throughput_bps)


async def test_retention_drops_whole_old_partitions(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    # Far enough back that no other test's data lives there.
    old_day = (now - timedelta(days=40)).date()
    dropped_names: list[str] = []
    partitions = Partitions(pool, retention_days=7, ahead_days=2, on_drop=dropped_names.append)
    await partitions.ensure({old_day})
    old = datetime(old_day.year, old_day.month, old_day.day, 12, tzinfo=UTC)
    await HistoryStore(pool).write([event_row(_metrics("old-node", old, 0.5))])

    dropped = await partitions.maintain(now)

    assert partition_name("events", old_day) in dropped
    assert partition_name("rollup_1m", old_day) in dropped
    assert dropped_names == dropped
    remaining = await pool.fetchval(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'telemetry' AND c.relname = ANY($1::text[])",
        [partition_name("events", old_day), partition_name("rollup_1m", old_day)],
    )
    assert remaining == 0
    # The window (retention days back to two days ahead) exists, and nothing older.
    for day in partitions.window(now):
        assert await pool.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", f"telemetry.{partition_name('events', day)}"
        )
    assert await partitions.maintain(now) == []


async def test_latest_state_only_moves_forward(redis_client: aioredis.Redis) -> None:
    prefix = f"x0:test:{uuid.uuid4().hex[:8]}:"
    store = LatestStore(redis_client, ttl_seconds=60, prefix=prefix)
    node = "latest-node"
    t = datetime.now(UTC).replace(microsecond=0)
    newer = NodeHeartbeat(
        node_id=node, mesh_id="mesh-a", timestamp=t, status="degraded", software_version="2"
    )
    older = NodeHeartbeat(
        node_id=node, mesh_id="mesh-b", timestamp=t - timedelta(seconds=5), software_version="1"
    )
    now_ms = epoch_ms(datetime.now(UTC))
    try:
        assert await store.apply([latest_update(newer)], now_ms) == 1
        assert await store.apply([latest_update(older)], now_ms) == 0
        assert await store.apply([latest_update(newer)], now_ms) == 0  # redelivered
        fields = await store.node(node)
        assert fields["status"] == "degraded"
        assert fields["version"] == "2"
        assert fields["mesh_id"] == "mesh-a"
        assert int(fields["hb_ms"]) == epoch_ms(t)
        assert 0 < await redis_client.ttl(f"{prefix}node:{node}") <= 60

        # A newer event from another mesh moves the node there.
        moved = NodeMetrics(
            node_id=node,
            mesh_id="mesh-b",
            timestamp=t + timedelta(seconds=1),
            cpu=0.5,
            memory=0.5,
            rtt_ms=1.0,
            packet_loss=0.0,
            throughput_bps=1.0,
        )
        assert await store.apply([latest_update(moved)], now_ms) == 1
        assert await store.members("mesh-a", now_ms) == []
        assert await store.members("mesh-b", now_ms) == [node]
        assert await store.meshes(now_ms) == ["mesh-a", "mesh-b"]
        assert [n for n, _ in await store.nodes(["mesh-a", "mesh-b"], now_ms)] == [node]
    finally:
        keys = [key async for key in redis_client.scan_iter(f"{prefix}*")]
        if keys:
            await redis_client.delete(*keys)
