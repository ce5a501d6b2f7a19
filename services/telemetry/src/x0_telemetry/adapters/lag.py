"""Kafka consumer lag, topic end offsets and dead-letter depth, read through the admin API.

Burrow-style: every ``interval_seconds`` one round asks the cluster for

- the committed offsets of every consumer group whose id starts with ``x0-``
  (``list_consumer_groups`` + ``list_consumer_group_offsets``),
- the log-end offset of every partition of every ``x0.*`` topic and of every topic
  such a group has committed on, and the log-start offset of every ``*.dlq`` topic,

and exports

- ``x0_kafka_consumer_lag{service,group,topic,partition}`` = end - committed,
- ``x0_kafka_topic_end_offset{service,topic,partition}`` (``rate()`` of it is throughput),
- ``x0_kafka_dlq_messages{service,topic}`` = sum over partitions of end - beginning,
- ``x0_kafka_lag_scrape_errors_total{service}``: rounds that failed.

The gauges come from one snapshot per round (a custom collector), so a group or topic
that vanished simply has no series in the next scrape. A failed round is logged and
counted and keeps the previous snapshot until it is ``stale_after_seconds`` old; after
that the series disappear rather than show numbers nobody measured.

aiokafka 0.14's admin client has no ``list_offsets`` (aio-libs/aiokafka#1045), so the
offsets come from a consumer without a group, which reads them with ListOffsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from x0_common.kafka.clients import connection_options
from x0_common.metrics import MetricFactory
from x0_common.settings import KafkaSettings
from x0_common.tasks import cancel_and_wait

logger = logging.getLogger(__name__)

GROUP_PREFIX = "x0-"
TOPIC_PREFIX = "x0."
DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class LagSnapshot:
    """What one round measured."""

    # (group, topic, partition) -> messages the group has not committed yet
    lag: dict[tuple[str, str, int], int] = field(default_factory=dict)
    # (topic, partition) -> offset the next message will get
    end_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    # topic -> messages the dead-letter topic still holds
    dlq_messages: dict[str, int] = field(default_factory=dict)
    taken_at: float = field(default_factory=time.monotonic)


class _SnapshotCollector(Collector):
    """Exposes the latest snapshot while it is fresh enough."""

    def __init__(self, service: str, stale_after: float) -> None:
        self.service = service
        self.stale_after = stale_after
        self.snapshot: LagSnapshot | None = None

    def describe(self) -> Iterable[Metric]:
        # Names only, so the registry can refuse duplicates without a Kafka round.
        return self._families(None)

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot
        if snapshot is not None and time.monotonic() - snapshot.taken_at > self.stale_after:
            snapshot = None
        return self._families(snapshot)

    def _families(self, snapshot: LagSnapshot | None) -> Iterator[Metric]:
        lag = GaugeMetricFamily(
            "x0_kafka_consumer_lag",
            "Messages an x0 consumer group has not committed yet, per partition.",
            labels=["service", "group", "topic", "partition"],
        )
        ends = GaugeMetricFamily(
            "x0_kafka_topic_end_offset",
            "Log-end offset of each partition of each x0.* topic.",
            labels=["service", "topic", "partition"],
        )
        dlq = GaugeMetricFamily(
            "x0_kafka_dlq_messages",
            "Messages held by each dead-letter (*.dlq) topic.",
            labels=["service", "topic"],
        )
        if snapshot is not None:
            for (group, topic, partition), value in sorted(snapshot.lag.items()):
                lag.add_metric([self.service, group, topic, str(partition)], value)
            for (topic, partition), value in sorted(snapshot.end_offsets.items()):
                ends.add_metric([self.service, topic, str(partition)], value)
            for topic, value in sorted(snapshot.dlq_messages.items()):
                dlq.add_metric([self.service, topic], value)
        yield from (lag, ends, dlq)


class ConsumerLagExporter:
    """Reads consumer lag and topic offsets every ``interval_seconds`` into ``registry``."""

    def __init__(
        self,
        kafka: KafkaSettings,
        registry: CollectorRegistry,
        *,
        service: str = "telemetry",
        interval_seconds: float = 10.0,
        stale_after_seconds: float | None = None,
    ) -> None:
        self._kafka = kafka
        self._service = service
        self._interval = interval_seconds
        # One round never outlives the client's own request timeout.
        self._round_timeout = kafka.request_timeout_ms / 1000
        self._collector = _SnapshotCollector(
            service,
            stale_after_seconds if stale_after_seconds is not None else 3 * interval_seconds,
        )
        registry.register(self._collector)
        declare = MetricFactory(registry)
        self._errors = declare.counter(
            "x0_kafka_lag_scrape_errors_total", "Consumer lag collection rounds that failed."
        )
        # Present at 0 from the start, so increase() sees the first failure.
        self._errors.labels(service)
        self._admin: AIOKafkaAdminClient | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        # One round at a time, even when a caller runs collect_once beside the loop.
        self._round = asyncio.Lock()

    @property
    def running(self) -> bool:
        """True while the periodic loop is alive."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the periodic loop; it connects on its first round, so a broker that is
        down at start-up only shows as failed rounds."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="x0-consumer-lag")

    async def stop(self) -> None:
        """Stop the loop and close the Kafka clients."""
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._disconnect()

    async def collect_once(self) -> LagSnapshot | None:
        """Run one round: the new snapshot, or None when the round failed (counted)."""
        async with self._round:
            return await self._collect()

    async def _collect(self) -> LagSnapshot | None:
        try:
            async with asyncio.timeout(self._round_timeout):
                snapshot = await self._measure()
        except (KafkaError, OSError, TimeoutError) as error:
            # The message names the broker address at most; settings hold no secrets.
            logger.warning(
                "consumer lag round failed: %s: %s", type(error).__name__, error or "timed out"
            )
        except Exception:
            # A bug in this round must not end the loop; the trace is for fixing it.
            logger.exception("consumer lag round failed unexpectedly")
        else:
            self._collector.snapshot = snapshot
            return snapshot
        self._errors.labels(self._service).inc()
        # A client that failed once may hold half-open connections: start over.
        await self._disconnect()
        return None

    async def _run(self) -> None:
        while True:
            await self.collect_once()
            await asyncio.sleep(self._interval)

    async def _measure(self) -> LagSnapshot:
        admin, consumer = await self._connect()
        described = await admin.describe_topics()
        partitions: dict[str, list[int]] = {
            entry["topic"]: sorted(p["partition"] for p in entry["partitions"])
            for entry in described
            if entry["error_code"] == 0
        }
        groups = sorted(
            group_id
            for group_id, *_ in await admin.list_consumer_groups()
            if group_id.startswith(GROUP_PREFIX)
        )
        # Committed offsets first, end offsets after: end >= committed, so lag >= 0.
        committed: dict[tuple[str, str, int], int] = {}
        for group in groups:
            for tp, meta in (await admin.list_consumer_group_offsets(group)).items():
                # A deleted topic's offsets may linger; -1 means nothing committed.
                if tp.topic in partitions and meta.offset >= 0:
                    committed[group, tp.topic, tp.partition] = meta.offset

        wanted = {t for t in partitions if t.startswith(TOPIC_PREFIX) or t.endswith(DLQ_SUFFIX)}
        wanted.update(topic for _, topic, _ in committed)
        tps = [TopicPartition(t, p) for t in sorted(wanted) for p in partitions[t]]
        dlq_tps = [tp for tp in tps if tp.topic.endswith(DLQ_SUFFIX)]
        ends, beginnings = await self._offsets(consumer, tps, dlq_tps)

        snapshot = LagSnapshot()
        for (group, topic, partition), offset in committed.items():
            end = ends.get(TopicPartition(topic, partition))
            if end is not None:
                snapshot.lag[group, topic, partition] = max(end - offset, 0)
        for tp in tps:
            if tp.topic.startswith(TOPIC_PREFIX) and tp in ends:
                snapshot.end_offsets[tp.topic, tp.partition] = ends[tp]
        for tp in dlq_tps:
            if tp in ends and tp in beginnings:
                held = max(ends[tp] - beginnings[tp], 0)
                snapshot.dlq_messages[tp.topic] = snapshot.dlq_messages.get(tp.topic, 0) + held
        return snapshot

    async def _offsets(
        self,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        dlq_tps: list[TopicPartition],
    ) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        if not tps:
            return {}, {}
        # Private on purpose, as in x0_common.kafka.follower: without being told the
        # topics, the consumer learns partition leaders one topic per metadata round trip
        # (StaleMetadata, back off, retry), which takes seconds for a few hundred topics;
        # its public assign() does the same but logs every topic name at INFO each round.
        client = consumer._client
        await client.set_topics(sorted({tp.topic for tp in tps}))
        try:
            ends = await consumer.end_offsets(tps)
            beginnings = await consumer.beginning_offsets(dlq_tps) if dlq_tps else {}
        finally:
            # Idle refreshes then name no topic (all topics, never auto-created): a topic
            # deleted between two rounds is not re-created by a broker that auto-creates.
            client.set_topics([])
        return (
            {tp: int(offset) for tp, offset in ends.items()},
            {tp: int(offset) for tp, offset in beginnings.items()},
        )

    async def _connect(self) -> tuple[AIOKafkaAdminClient, AIOKafkaConsumer]:
        if self._admin is not None and self._consumer is not None:
            return self._admin, self._consumer
        client_id = f"{self._kafka.client_id}-lag"
        connection = connection_options(self._kafka.model_copy(update={"client_id": client_id}))
        admin = AIOKafkaAdminClient(**connection)
        consumer = AIOKafkaConsumer(
            **connection,
            group_id=None,
            enable_auto_commit=False,
        )
        # Kept before starting, so a failed start is closed by _disconnect.
        self._admin, self._consumer = admin, consumer
        await admin.start()
        await consumer.start()
        return admin, consumer

    async def _disconnect(self) -> None:
        admin, consumer = self._admin, self._consumer
        self._admin = self._consumer = None
        # Closing a client that never connected can fail too; there is nothing left to do.
        if consumer is not None:
            with contextlib.suppress(Exception):
                await consumer.stop()
        if admin is not None:
            with contextlib.suppress(Exception):
                await admin.close()
