"""Helpers of the writer tests: the test's topics, an index-topic reader, the writer
under test, and the context the responder builds for an ingest record."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from prometheus_client import CollectorRegistry

from x0_common.events.rag import Indexed
from x0_common.kafka import RequestContext
from x0_common.kafka.clients import consumer_options
from x0_common.principal import DEFAULT_TENANT
from x0_common.settings import KafkaSettings
from x0_common.testing.principals import principal, request_context
from x0_rag.adapters.store import RagStore
from x0_rag.handlers.writer import IngestWriter
from x0_rag.metrics import SERVICE, RagMetrics


@dataclass
class Topics:
    """An ingest topic and an index topic of this test alone."""

    ingest: str
    index: str


class EventLog:
    """Reads a topic from its beginning, as a replica reads the index topic."""

    def __init__(self, settings: KafkaSettings, topic: str) -> None:
        self._consumer = AIOKafkaConsumer(**consumer_options(settings))
        self.topic = topic
        self.records: list[Any] = []

    async def start(self) -> None:
        await self._consumer.start()
        partitions = self._consumer.partitions_for_topic(self.topic)
        if partitions is None:
            await self._consumer._client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(self.topic) or {0}
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self._consumer.assign(assigned)
        await self._consumer.seek_to_beginning(*assigned)

    async def stop(self) -> None:
        await self._consumer.stop()

    async def until(self, done: Callable[[list[Any]], bool], timeout: float = 30.0) -> list[Any]:
        """Every record read so far, once ``done(records)`` holds (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while not done(self.records):
            assert time.monotonic() < deadline, f"gave up waiting on {self.topic}"
            batches = await self._consumer.getmany(timeout_ms=200)
            for batch in batches.values():
                self.records.extend(batch)
        return self.records

    async def settle(self, seconds: float = 1.0) -> list[Any]:
        """Every record that arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            batches = await self._consumer.getmany(timeout_ms=100)
            for batch in batches.values():
                self.records.extend(batch)
        return self.records

    def events(self) -> list[Indexed]:
        """The records read so far, as index events."""
        return [Indexed.model_validate_json(record.value) for record in self.records]


@dataclass
class WriterUnderTest:
    """The writer on the test's topics, its store and its metrics."""

    writer: IngestWriter
    store: RagStore
    metrics: RagMetrics
    registry: CollectorRegistry
    topics: Topics

    def sample(self, name: str, **labels: str) -> float:
        """A metric value (0 when never set)."""
        value = self.registry.get_sample_value(name, {"service": SERVICE, **labels})
        return value or 0.0


def at(partition: int, offset: int, tenant: str = DEFAULT_TENANT) -> RequestContext:
    """The context the responder builds for an ingest record at ``partition:offset``
    sent by a caller of ``tenant``."""
    return request_context(principal(tenant), seconds_left=None, partition=partition, offset=offset)
