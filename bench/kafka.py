"""Section ``kafka``: the Requester/Responder round trip against a raw aiokafka echo.

Both paths cross the same broker with the same producer settings (``acks=all``,
idempotent, no linger) and a worker in its own process. Rounds alternate
between the two paths so that machine noise falls on both alike.
"""

from __future__ import annotations

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from bench.harness import closed_loop, percentile, worker_process
from bench.report import Record
from x0_common.kafka import Requester
from x0_common.kafka.clients import consumer_options, ensure_topics, producer_options
from x0_common.metrics import RequesterMetrics, new_registry
from x0_common.settings import KafkaSettings
from x0_common.testing.echo import ECHO_TYPE, EchoRequest

CONCURRENCIES = (1, 32)
ROUNDS = 3
CALLS = {1: 400, 32: 3200}
WARMUP = 200
P50_TARGET = "<= 1.3"
P99_TARGET = "<= 2.0"  # our own guard on the tail; the issue sets only the p50 target


class RawEchoClient:
    """A bare request/reply client: publish, then await the reply by correlation id."""

    def __init__(self, settings: KafkaSettings, reply_topic: str) -> None:
        self._settings = settings
        self._reply_topic = reply_topic
        self._pending: dict[bytes, asyncio.Future[bytes]] = {}
        self._producer = AIOKafkaProducer(**producer_options(settings))
        self._consumer = AIOKafkaConsumer(**consumer_options(settings), group_id=None)
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the clients and the reply reader."""
        await ensure_topics(self._settings, [self._reply_topic])
        await self._producer.start()
        await self._consumer.start()
        partition = TopicPartition(self._reply_topic, 0)
        self._consumer.assign([partition])
        await self._consumer.seek_to_end(partition)
        await self._consumer.position(partition)
        self._reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        """Stop everything."""
        if self._reader is not None:
            self._reader.cancel()
        await self._consumer.stop()
        await self._producer.stop()

    async def request(self, topic: str, body: bytes) -> bytes:
        """One round trip."""
        correlation_id = uuid.uuid4().hex.encode()
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        await self._producer.send_and_wait(
            topic,
            body,
            headers=[("correlation_id", correlation_id), ("reply_to", self._reply_topic.encode())],
        )
        try:
            return await future
        finally:
            del self._pending[correlation_id]

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    future = self._pending.get(dict(record.headers)["correlation_id"])
                    if future is not None and not future.done():
                        future.set_result(record.value)


async def run(settings: KafkaSettings) -> list[Record]:
    """Measure both paths at each concurrency; return the records."""
    run_id = uuid.uuid4().hex[:8]
    raw_topic, x0_topic = f"bench.raw.{run_id}", f"bench.x0.{run_id}"
    await ensure_topics(settings, [raw_topic, x0_topic, f"{x0_topic}.dlq"])
    samples: dict[tuple[str, int], list[float]] = {
        (path, c): [] for path in ("raw", "x0") for c in CONCURRENCIES
    }
    body = EchoRequest(text="benchmark payload").model_dump_json().encode()
    raw = RawEchoClient(settings, f"{raw_topic}.replies")
    requester = Requester(
        settings,
        reply_topic=f"{x0_topic}.replies",
        metrics=RequesterMetrics(new_registry(), "bench"),
    )
    with (
        worker_process("bench.raw_echo", "--topic", raw_topic),
        worker_process("x0_common.testing.echo", "--topic", x0_topic, "--group", x0_topic),
    ):
        await raw.start()
        await requester.start()
        try:

            async def raw_call() -> object:
                return await raw.request(raw_topic, body)

            async def x0_call() -> object:
                return await requester.request(
                    x0_topic, ECHO_TYPE, EchoRequest(text="benchmark payload"), timeout=30
                )

            calls = {"raw": raw_call, "x0": x0_call}
            for call in calls.values():
                await closed_loop(call, concurrency=8, total=WARMUP)
            for _ in range(ROUNDS):
                for concurrency in CONCURRENCIES:
                    for path, call in calls.items():
                        samples[(path, concurrency)] += await closed_loop(
                            call, concurrency=concurrency, total=CALLS[concurrency] // ROUNDS
                        )
        finally:
            await requester.stop()
            await raw.stop()

    records = []
    for concurrency in CONCURRENCIES:
        for quantile, label, target in ((0.5, "p50", P50_TARGET), (0.99, "p99", P99_TARGET)):
            records.append(
                Record(
                    name=f"kafka.requester.{label}.c{concurrency}",
                    value=percentile(samples[("x0", concurrency)], quantile) * 1000,
                    unit="ms",
                    baseline=f"raw aiokafka echo {label} at concurrency {concurrency}",
                    baseline_value=percentile(samples[("raw", concurrency)], quantile) * 1000,
                    target=target,
                )
            )
    return records
