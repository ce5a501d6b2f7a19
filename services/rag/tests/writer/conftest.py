"""Fixtures for the writer and collection tests: the real PostgreSQL (rag schema migrated
as at start-up), the real Kafka, and the real model behind a batcher."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

import x0_rag
from x0_common.kafka.broker import new_broker
from x0_common.kafka.clients import ensure_topics
from x0_common.metrics import new_registry
from x0_common.settings import KafkaSettings
from x0_common.testing.stack import StackEndpoints
from x0_rag.adapters.embedder import DynamicBatcher, Embedder
from x0_rag.adapters.index_events import IndexEvents
from x0_rag.adapters.store import RagStore
from x0_rag.handlers.writer import IngestWriter
from x0_rag.metrics import RagMetrics

from .support import EventLog, Topics, WriterUnderTest

MIGRATIONS = Path(x0_rag.__file__).parent / "migrations"


@pytest.fixture(scope="session")
async def pg_pool(stack: StackEndpoints) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test PostgreSQL with the rag schema migrated, as at start-up."""
    async with stack.migrated_pool("rag", MIGRATIONS) as pool:
        yield pool


@pytest.fixture(scope="session")
async def batcher(embedder: Embedder) -> AsyncIterator[DynamicBatcher]:
    """The worker's batcher around the real model."""
    async with DynamicBatcher(embedder.embed, max_batch=64, linger_ms=2) as running:
        yield running


@pytest.fixture(scope="session")
async def broker(kafka_settings: KafkaSettings) -> AsyncIterator[KafkaBroker]:
    """A started broker with x0's producer options, for publishing."""
    started = new_broker(kafka_settings)
    await started.start()
    yield started
    await started.stop()


@pytest.fixture
async def collection(pg_pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A collection name of this test alone; whatever it holds is removed afterwards."""
    name = f"t-{uuid.uuid4().hex[:12]}"
    yield name
    await pg_pool.execute("DELETE FROM rag.collections WHERE name = $1", name)


@pytest.fixture
async def topics(kafka_settings: KafkaSettings, pg_pool: asyncpg.Pool) -> AsyncIterator[Topics]:
    """Fresh topics (2 partitions each, like the real pair: index partition = ingest's)."""
    suffix = uuid.uuid4().hex[:12]
    made = Topics(ingest=f"x0.test.ingest.{suffix}", index=f"x0.test.index.{suffix}")
    await ensure_topics(
        kafka_settings, [made.ingest, f"{made.ingest}.dlq", made.index], partitions=2
    )
    yield made
    for table in ("ingest_progress", "ingest_log"):
        await pg_pool.execute(f"DELETE FROM rag.{table} WHERE topic = $1", made.ingest)  # noqa: S608


@pytest.fixture
async def index_log(kafka_settings: KafkaSettings, topics: Topics) -> AsyncIterator[EventLog]:
    """The test's index topic, read from the beginning."""
    log = EventLog(kafka_settings, topics.index)
    await log.start()
    yield log
    await log.stop()


@pytest.fixture
def writer(
    pg_pool: asyncpg.Pool, batcher: DynamicBatcher, broker: KafkaBroker, topics: Topics
) -> WriterUnderTest:
    """The real writer: real PostgreSQL, real model, real broker, the test's topics."""
    registry = new_registry()
    metrics = RagMetrics(registry)
    store = RagStore(pg_pool)
    writer = IngestWriter(
        store,
        batcher.embed_background,
        IndexEvents(broker, topics.index),
        metrics,
        topic=topics.ingest,
    )
    return WriterUnderTest(writer, store, metrics, registry, topics)
