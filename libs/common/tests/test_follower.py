"""LogFollower on the real broker: every partition, from chosen offsets, lag, retries."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from x0_common.kafka.clients import producer_options
from x0_common.kafka.follower import LogFollower, OffsetOutOfRange
from x0_common.settings import KafkaSettings
from x0_common.testing.kafka import new_topic

pytestmark = pytest.mark.integration

PARTITIONS = 3


@pytest.fixture
async def topic(kafka_settings: KafkaSettings) -> str:
    return await new_topic(kafka_settings, "follow", partitions=PARTITIONS)


@pytest.fixture
async def producer(kafka_settings: KafkaSettings) -> AsyncIterator[AIOKafkaProducer]:
    started = AIOKafkaProducer(**producer_options(kafka_settings))
    await started.start()
    yield started
    await started.stop()


@dataclass
class Log:
    """This test's topic, a producer for it and the settings a follower reads it with."""

    settings: KafkaSettings
    topic: str
    producer: AIOKafkaProducer

    async def publish(self, per_partition: int) -> None:
        """``per_partition`` records on each partition, valued ``b"<partition>:<n>"``."""
        for partition in range(PARTITIONS):
            for n in range(per_partition):
                value = f"{partition}:{n}".encode()
                await self.producer.send_and_wait(self.topic, value, partition=partition)

    def follower(self, handler: Any, **options: Any) -> LogFollower:
        """A follower of this topic, handing records to ``handler``."""
        return LogFollower(self.settings, topic=self.topic, handler=handler, **options)


@pytest.fixture
def log(kafka_settings: KafkaSettings, topic: str, producer: AIOKafkaProducer) -> Log:
    return Log(kafka_settings, topic, producer)


class Collector:
    """A handler that records every record it is handed, batch by batch."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.batches = 0
        self.fail_next = 0

    async def __call__(self, records: list[Any]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("transient failure")
        self.batches += 1
        self.values += [record.value.decode() for record in records]


async def test_reads_every_partition_from_the_given_offsets_and_reports_lag(log: Log) -> None:
    await log.publish(4)
    collector = Collector()
    follower = log.follower(collector)
    await follower.open()
    assert follower.partitions == [0, 1, 2]
    assert await follower.end_offsets() == {0: 4, 1: 4, 2: 4}
    # Partition 0 from offset 3, partition 1 from 1; partition 2 (not named) from the start.
    await follower.start({0: 3, 1: 1})
    try:
        await follower.wait_for_positions({0: 4, 1: 4, 2: 4}, timeout=20)
        assert sorted(collector.values) == sorted(
            ["0:3", "1:1", "1:2", "1:3", "2:0", "2:1", "2:2", "2:3"]
        )
        # Each partition's records arrive in offset order.
        for partition in range(PARTITIONS):
            mine = [v for v in collector.values if v.startswith(f"{partition}:")]
            assert mine == sorted(mine)
        assert follower.positions() == {0: 4, 1: 4, 2: 4}
        assert await follower.lag() == 0

        await log.publish(2)  # 6 more records, 2 per partition
        await follower.wait_for_positions({0: 6, 1: 6, 2: 6}, timeout=20)
        assert len(collector.values) == 8 + 6
        assert await follower.lags() == {0: 0, 1: 0, 2: 0}
    finally:
        await follower.stop()


async def test_lag_counts_records_not_handed_over_yet(log: Log) -> None:
    await log.publish(5)
    release = asyncio.Event()
    collector = Collector()

    async def held(records: list[Any]) -> None:
        await release.wait()
        await collector(records)

    follower = log.follower(held)
    await follower.start({0: 5, 1: 2, 2: 0})
    try:
        assert follower.positions() == {0: 5, 1: 2, 2: 0}
        await asyncio.sleep(0.5)  # records are fetched, but the handler holds them
        assert await follower.lags() == {0: 0, 1: 3, 2: 5}
        assert await follower.lag() == 8
        release.set()
        await follower.wait_for_positions({0: 5, 1: 5, 2: 5}, timeout=20)
        assert await follower.lag() == 0
        assert len(collector.values) == 8
    finally:
        await follower.stop()


async def test_a_failing_handler_gets_the_same_batch_again(log: Log) -> None:
    await log.publish(3)
    collector = Collector()
    collector.fail_next = 2
    follower = log.follower(collector, retry_base_delay=0.01, retry_max_delay=0.05)
    await follower.start()
    try:
        await follower.wait_for_positions({0: 3, 1: 3, 2: 3}, timeout=20)
    finally:
        await follower.stop()
    # Nothing skipped and nothing handled twice once accepted.
    assert sorted(collector.values) == sorted(f"{p}:{n}" for p in range(3) for n in range(3))


async def test_offsets_outside_the_log_are_refused(log: Log) -> None:
    await log.publish(1)
    follower = log.follower(Collector())
    try:
        with pytest.raises(OffsetOutOfRange) as refused:
            await follower.start({1: 7})
        assert refused.value.outside == {1: (7, 0, 1)}
        assert not follower.running
    finally:
        await follower.stop()


async def test_a_missing_topic_is_an_error(kafka_settings: KafkaSettings) -> None:
    follower = LogFollower(
        kafka_settings, topic=f"x0.test.absent.{uuid.uuid4().hex[:12]}", handler=Collector()
    )
    with pytest.raises(LookupError):
        await follower.open()
    await follower.stop()


async def test_stop_is_prompt_while_idle_and_safe_twice(log: Log) -> None:
    follower = log.follower(Collector(), poll_timeout_ms=5000)
    await follower.start()
    assert follower.running
    async with asyncio.timeout(3):
        await follower.stop()
    assert not follower.running
    await follower.stop()
