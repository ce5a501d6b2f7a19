"""Fixtures for the index and search tests: the real PostgreSQL, Redis, Kafka and model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from aiokafka import AIOKafkaProducer

from x0_common.kafka.clients import producer_options
from x0_common.metrics import new_registry
from x0_common.postgres import migrate
from x0_common.settings import KafkaSettings
from x0_common.testing.kafka import new_topic
from x0_common.testing.stack import StackEndpoints
from x0_rag.adapters.embedder import Embedder
from x0_rag.adapters.index import IndexManager
from x0_rag.metrics import RagMetrics
from x0_rag.settings import RagSettings

from .support import MIGRATIONS, RagWriter

PARTITIONS = 2

StartManager = Callable[..., Awaitable[IndexManager]]


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def rag_pool(stack: StackEndpoints) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test PostgreSQL with the rag schema migrated, as at start-up."""
    pool = await asyncpg.create_pool(stack.postgres_dsn, min_size=1, max_size=8)
    assert pool is not None
    await migrate(pool, "rag", MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis_client(stack: StackEndpoints) -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis."""
    client = aioredis.from_url(stack.redis_url)
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer with the services' options."""
    started = AIOKafkaProducer(**producer_options(kafka_settings))
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def index_topic(kafka_settings: KafkaSettings) -> str:
    """This test's own index topic (two partitions, like two ingest partitions)."""
    return await new_topic(kafka_settings, "rag.index", partitions=PARTITIONS)


@pytest.fixture
async def writer(
    rag_pool: asyncpg.Pool, embedder: Embedder, producer: AIOKafkaProducer, index_topic: str
) -> AsyncIterator[RagWriter]:
    """Writes this test's rows and events; removes its collections afterwards."""
    ingest_topic = f"x0.test.rag.ingest.{uuid.uuid4().hex[:12]}"
    helper = RagWriter(rag_pool, embedder, producer, index_topic, ingest_topic)
    yield helper
    await helper.cleanup()


@pytest.fixture
def settings() -> RagSettings:
    """Settings of the replicas under test (snapshots only when a test asks)."""
    return RagSettings(
        ingest_partitions=PARTITIONS, snapshot_interval_seconds=3600, max_version_wait_ms=3000
    )


@pytest.fixture
async def start_manager(
    settings: RagSettings,
    rag_pool: asyncpg.Pool,
    kafka_settings: KafkaSettings,
    writer: RagWriter,
    tmp_path: Path,
) -> AsyncIterator[StartManager]:
    """Starts index managers on this test's topics; each stops at the end of the test."""
    started: list[IndexManager] = []

    async def start(
        snapshot_root: Path | None = None, metrics: RagMetrics | None = None
    ) -> IndexManager:
        manager = IndexManager(
            settings,
            pool=rag_pool,
            metrics=metrics or RagMetrics(new_registry()),
            topic=writer.index_topic,
            ingest_topic=writer.ingest_topic,
            kafka=kafka_settings,
            snapshot_root=snapshot_root or tmp_path / "snapshots",
        )
        await manager.start()
        started.append(manager)
        await manager.wait_ready(timeout=30)
        return manager

    yield start
    for manager in started:
        await manager.stop()
