"""The consumer lag exporter against the real broker: lag, end offsets, DLQ depth, errors."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from x0_common.kafka.clients import connection_options, ensure_topics, producer_options
from x0_common.metrics import new_registry
from x0_common.settings import KafkaSettings
from x0_common.testing import wait_until
from x0_common.testing.kafka import commit_offsets
from x0_telemetry.adapters.lag import ConsumerLagExporter

pytestmark = pytest.mark.integration


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, {"service": "telemetry", **labels})


def _series(registry: CollectorRegistry, name: str) -> list[dict[str, str]]:
    return [
        sample.labels
        for metric in registry.collect()
        for sample in metric.samples
        if sample.name == name
    ]


async def _produce(settings: KafkaSettings, topic: str, counts: dict[int, int]) -> None:
    producer = AIOKafkaProducer(**producer_options(settings))
    await producer.start()
    try:
        for partition, count in counts.items():
            for i in range(count):
                await producer.send_and_wait(topic, f"m{i}".encode(), partition=partition)
    finally:
        await producer.stop()


async def _group_behind(
    settings: KafkaSettings,
    topics: list[str],
    label: str,
    suffix: str = "",
    *,
    produced: int,
    read: int,
) -> tuple[str, str]:
    """A new one-partition topic holding ``produced`` messages, and a consumer group that
    committed ``read`` of them: ``(topic, group)``, named for this run and ``label``."""
    run = uuid.uuid4().hex[:12]
    topic, group = f"x0.test.lag.{label}.{run}{suffix}", f"x0-test-lag-{label}-{run}"
    topics.append(topic)
    await ensure_topics(settings, [topic])
    await _produce(settings, topic, {0: produced})
    await commit_offsets(settings.bootstrap_servers, group, {TopicPartition(topic, 0): read})
    return topic, group


@pytest.fixture
async def admin(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(**connection_options(kafka_settings))
    await client.start()
    yield client
    await client.close()


@pytest.fixture
async def topics(admin: AIOKafkaAdminClient) -> AsyncIterator[list[str]]:
    """Names for this test's topics; whatever of them exists afterwards is deleted."""
    names: list[str] = []
    yield names
    existing = set(await admin.list_topics())
    leftover = [name for name in names if name in existing]
    if leftover:
        await admin.delete_topics(leftover)


async def test_lag_end_offsets_and_dlq_depth_match_what_was_produced_and_committed(
    kafka_settings: KafkaSettings, admin: AIOKafkaAdminClient, topics: list[str]
) -> None:
    run = uuid.uuid4().hex[:12]
    topic, dlq = f"x0.test.lag.{run}", f"x0.test.lag.{run}.dlq"
    foreign = f"test.lag.foreign.{run}"  # not x0.*: lag yes (x0 group), end offset no
    group, other_group = f"x0-test-lag-{run}", f"other-test-lag-{run}"
    topics.extend([topic, dlq, foreign])
    await ensure_topics(kafka_settings, [topic], partitions=2)
    await ensure_topics(kafka_settings, [dlq, foreign])
    await _produce(kafka_settings, topic, {0: 7, 1: 3})
    await _produce(kafka_settings, dlq, {0: 5})
    await _produce(kafka_settings, foreign, {0: 4})
    await commit_offsets(
        kafka_settings.bootstrap_servers,
        group,
        {TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 3, TopicPartition(foreign, 0): 1},
    )
    await commit_offsets(
        kafka_settings.bootstrap_servers, other_group, {TopicPartition(topic, 0): 1}
    )
    # Records removed from the head of the DLQ no longer count as held.
    await admin.delete_records({TopicPartition(dlq, 0): RecordsToDelete(before_offset=2)})

    registry = new_registry()
    exporter = ConsumerLagExporter(kafka_settings, registry)
    try:
        assert await exporter.collect_once() is not None
    finally:
        await exporter.stop()

    lag = "x0_kafka_consumer_lag"
    assert _value(registry, lag, group=group, topic=topic, partition="0") == 5
    assert _value(registry, lag, group=group, topic=topic, partition="1") == 0
    assert _value(registry, lag, group=group, topic=foreign, partition="0") == 3
    assert not [s for s in _series(registry, lag) if s["group"] == other_group]
    end = "x0_kafka_topic_end_offset"
    assert _value(registry, end, topic=topic, partition="0") == 7
    assert _value(registry, end, topic=topic, partition="1") == 3
    assert _value(registry, end, topic=dlq, partition="0") == 5
    assert _value(registry, end, topic=foreign, partition="0") is None
    assert _value(registry, "x0_kafka_dlq_messages", topic=dlq) == 3
    # A plain topic is no dead-letter topic.
    assert _value(registry, "x0_kafka_dlq_messages", topic=topic) is None
    assert _value(registry, "x0_kafka_lag_scrape_errors_total") == 0
    # What Prometheus scrapes: the text exposition parses back to the same series.
    scraped = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    key = (group, "0", "telemetry", topic)
    labels = tuple(zip(("group", "partition", "service", "topic"), key, strict=True))
    assert scraped[lag, labels] == 5


async def test_series_of_a_deleted_topic_disappear(
    kafka_settings: KafkaSettings, admin: AIOKafkaAdminClient, topics: list[str]
) -> None:
    topic, group = await _group_behind(kafka_settings, topics, "gone", ".dlq", produced=2, read=1)
    registry = new_registry()
    exporter = ConsumerLagExporter(kafka_settings, registry)
    try:
        await exporter.collect_once()
        assert _value(registry, "x0_kafka_consumer_lag", group=group, topic=topic, partition="0")
        assert _value(registry, "x0_kafka_dlq_messages", topic=topic) == 2

        await admin.delete_topics([topic])
        # The broker's metadata follows the controller's deletion a moment later.
        async with asyncio.timeout(10):
            while topic in await admin.list_topics():  # noqa: ASYNC110 - nothing to await
                await asyncio.sleep(0.1)
        assert await exporter.collect_once() is not None
    finally:
        await exporter.stop()
    assert not [s for s in _series(registry, "x0_kafka_consumer_lag") if s["topic"] == topic]
    assert not [s for s in _series(registry, "x0_kafka_topic_end_offset") if s["topic"] == topic]
    assert _value(registry, "x0_kafka_dlq_messages", topic=topic) is None
    assert topic not in await admin.list_topics()  # and the exporter did not re-create it


async def test_the_loop_follows_new_messages_and_commits(
    kafka_settings: KafkaSettings, topics: list[str]
) -> None:
    topic, group = await _group_behind(kafka_settings, topics, "loop", produced=4, read=4)
    registry = new_registry()
    exporter = ConsumerLagExporter(kafka_settings, registry, interval_seconds=0.1)
    labels = {"group": group, "topic": topic, "partition": "0"}

    async def lag_becomes(expected: float) -> None:
        await wait_until(lambda: _value(registry, "x0_kafka_consumer_lag", **labels) == expected)

    await exporter.start()
    try:
        await lag_becomes(0)
        await _produce(kafka_settings, topic, {0: 6})
        await lag_becomes(6)
        await commit_offsets(kafka_settings.bootstrap_servers, group, {TopicPartition(topic, 0): 8})
        await lag_becomes(2)
        assert exporter.running
    finally:
        await exporter.stop()
    assert not exporter.running


async def test_an_unreachable_broker_counts_errors_and_the_loop_keeps_running() -> None:
    # Port 1 refuses at once; the short timeout bounds a round if it did not.
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1", request_timeout_ms=2000)
    registry = new_registry()
    exporter = ConsumerLagExporter(settings, registry, interval_seconds=0.05)
    errors = "x0_kafka_lag_scrape_errors_total"
    try:
        assert await exporter.collect_once() is None
        assert _value(registry, errors) == 1
        await exporter.start()
        await wait_until(lambda: (_value(registry, errors) or 0) >= 3, timeout=15)
        assert exporter.running
    finally:
        await exporter.stop()
    assert not _series(registry, "x0_kafka_consumer_lag")
    assert not _series(registry, "x0_kafka_topic_end_offset")


async def test_a_snapshot_older_than_stale_after_is_no_longer_exposed(
    kafka_settings: KafkaSettings, topics: list[str]
) -> None:
    run = uuid.uuid4().hex[:12]
    topic = f"x0.test.lag.stale.{run}"
    topics.append(topic)
    await ensure_topics(kafka_settings, [topic])
    registry = new_registry()
    exporter = ConsumerLagExporter(kafka_settings, registry, stale_after_seconds=0.5)
    try:
        assert await exporter.collect_once() is not None
    finally:
        await exporter.stop()
    assert _value(registry, "x0_kafka_topic_end_offset", topic=topic, partition="0") == 0
    # No round since (as when every round fails): the old numbers are withdrawn.
    await asyncio.sleep(0.6)
    assert _value(registry, "x0_kafka_topic_end_offset", topic=topic, partition="0") is None
