"""The telemetry worker's dependencies on the test stack, opened as the worker opens them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from x0_common.metrics import new_registry
from x0_common.postgres import migrate
from x0_common.resources import Stores
from x0_common.settings import CommonSettings
from x0_common.testing.stack import StackEndpoints
from x0_telemetry.adapters.history import HistoryStore
from x0_telemetry.adapters.latest import LatestStore
from x0_telemetry.adapters.partitions import Partitions
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.metrics import TelemetryMetrics
from x0_telemetry.settings import TelemetrySettings

MIGRATIONS = Path(__file__).parents[1] / "src" / "x0_telemetry" / "migrations"


@asynccontextmanager
async def started_deps(stack: StackEndpoints, **settings: Any) -> AsyncIterator[TelemetryDeps]:
    """Dependencies with an ingest group and a Redis prefix of their own; ``settings``
    override the worker's."""
    configured = TelemetrySettings(
        common=CommonSettings(kafka=stack.kafka_settings()),
        ingest_group_id=f"x0-test-telemetry-{uuid.uuid4().hex[:8]}",
        **settings,
    )
    pool = await asyncpg.create_pool(stack.postgres_dsn, min_size=1, max_size=3)
    assert pool is not None
    await migrate(pool, "telemetry", MIGRATIONS)
    client = aioredis.from_url(stack.redis_url, decode_responses=True)
    deps = TelemetryDeps(
        settings=configured,
        metrics=TelemetryMetrics(new_registry()),
        stores=Stores.of(pool, client),
    )
    deps.history = HistoryStore(pool)
    deps.latest = LatestStore(client, ttl_seconds=300, prefix=f"x0:test:{uuid.uuid4().hex}:")
    deps.partitions = Partitions(pool, retention_days=7, ahead_days=1)
    try:
        yield deps
    finally:
        await client.aclose()
        await pool.close()
