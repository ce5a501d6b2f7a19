"""Publish a request to Kafka and await its reply by correlation id.

Each requester (one per gateway replica) owns a reply topic of one partition and
reads it by manual assignment, with no consumer group: replies for one replica
can never be handed to another, and no group rebalance can pause or move them.
The worker answers on whatever topic the request's ``reply_to`` header names.

Replies that match no waiting request are dropped and counted: ``late`` when the
request already timed out here, ``unknown`` otherwise (a redelivered duplicate,
or a reply meant for an earlier run of this replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind
from pydantic import BaseModel, ValidationError

from x0_common.errors import (
    DeadlineExceeded,
    InternalError,
    Overloaded,
    Unavailable,
    error_for_code,
)
from x0_common.events.envelope import Headers, Reply
from x0_common.kafka.clients import consumer_options, ensure_topics, producer_options
from x0_common.kafka.sealing import SealError
from x0_common.metrics import RequesterMetrics
from x0_common.settings import KafkaSettings

logger = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

# How many timed-out correlation ids to remember, to tell "late" from "unknown".
_EXPIRED_MEMORY = 10_000


class Requester:
    """Request/reply over Kafka for one gateway replica."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        reply_topic: str,
        metrics: RequesterMetrics,
        max_in_flight: int = 10_000,
    ) -> None:
        self._settings = settings
        # Requests and replies travel sealed: secrets never sit in Kafka in the clear.
        self._sealer = settings.sealer()
        self.reply_topic = reply_topic
        self._metrics = metrics
        self._max_in_flight = max_in_flight
        self._pending: dict[str, asyncio.Future[Reply]] = {}
        self._expired: OrderedDict[str, None] = OrderedDict()
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._reader: asyncio.Task[None] | None = None
        self._assigned = asyncio.Event()

    @property
    def ready(self) -> bool:
        """True once the reply partition is assigned and its position fetched."""
        return self._assigned.is_set() and self._reader is not None and not self._reader.done()

    async def kafka_reachable(self, timeout: float = 2.0) -> bool:
        """True when the cluster answers a metadata request within ``timeout`` seconds."""
        if self._producer is None:
            return False
        try:
            async with asyncio.timeout(timeout):
                await self._producer.client.fetch_all_metadata()
        except (TimeoutError, KafkaError, OSError):
            return False
        return True

    @property
    def in_flight(self) -> int:
        """Requests waiting for their reply."""
        return len(self._pending)

    async def start(self) -> None:
        """Create the reply topic if needed, then start the producer and reply reader."""
        await ensure_topics(
            self._settings,
            [self.reply_topic],
            config={"retention.ms": str(self._settings.reply_topic_retention_ms)},
        )
        self._producer = AIOKafkaProducer(**producer_options(self._settings))
        await self._producer.start()
        # No group_id: manual assignment, so no group coordinator and no rebalances.
        self._consumer = AIOKafkaConsumer(
            **consumer_options(self._settings), group_id=None, auto_offset_reset="latest"
        )
        await self._consumer.start()
        partition = TopicPartition(self.reply_topic, 0)
        self._consumer.assign([partition])
        # Replies already in the topic belong to an earlier run: nobody waits for them.
        await self._consumer.seek_to_end(partition)
        await self._consumer.position(partition)
        self._assigned.set()
        self._reader = asyncio.create_task(self._read_replies(), name="x0-reply-reader")

    async def stop(self) -> None:
        """Stop reading replies; requests still waiting fail with ``unavailable``."""
        self._assigned.clear()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for future in self._pending.values():
            if not future.done():
                future.cancel()
        self._pending.clear()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            await self._producer.stop()
            # Dropped: a stopped client would open a fresh connection on next use.
            self._producer = None

    async def request(
        self,
        topic: str,
        message_type: str,
        payload: BaseModel,
        *,
        timeout: float,
        principal: str | None = None,
        correlation_id: str | None = None,
    ) -> dict[str, Any]:
        """Publish ``payload`` and return the reply's result, decoded.

        Raises the typed :class:`~x0_common.errors.X0Error` the handler raised,
        :class:`DeadlineExceeded` when no reply comes within ``timeout`` seconds, or
        :class:`Overloaded` when too many requests are already in flight.
        """
        raw = await self.request_raw(
            topic,
            message_type,
            payload,
            timeout=timeout,
            principal=principal,
            correlation_id=correlation_id,
        )
        result: dict[str, Any] = json.loads(raw)
        return result

    async def request_raw(
        self,
        topic: str,
        message_type: str,
        payload: BaseModel,
        *,
        timeout: float,
        principal: str | None = None,
        correlation_id: str | None = None,
    ) -> bytes:
        """Like :meth:`request`, but return the result's JSON bytes as the worker sent them.

        For a caller that passes the result on unchanged (the gateway to its HTTP
        client): no decoding and re-encoding on the way.
        """
        if self._producer is None or not self.ready:
            msg = "the requester is not started"
            raise RuntimeError(msg)
        service = self._metrics.service
        if len(self._pending) >= self._max_in_flight:
            self._metrics.rejected.labels(service, message_type).inc()
            raise Overloaded("too many requests in flight", details={"limit": self._max_in_flight})

        correlation_id = correlation_id or uuid.uuid4().hex
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + timeout * 1000)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[correlation_id] = future
        self._metrics.in_flight.labels(service).inc()
        self._metrics.requests.labels(service, message_type).inc()
        try:
            with _tracer.start_as_current_span(
                f"{topic} publish",
                kind=SpanKind.PRODUCER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.destination.name": topic,
                    "messaging.message.conversation_id": correlation_id,
                    "x0.message_type": message_type,
                },
            ):
                headers = {
                    Headers.TYPE: message_type,
                    Headers.CORRELATION_ID: correlation_id,
                    Headers.REPLY_TO: self.reply_topic,
                    Headers.DEADLINE: str(deadline_ms),
                    "content-type": "application/json",
                }
                if principal:
                    headers[Headers.PRINCIPAL] = principal
                sealed = self._sealer.seal(payload.model_dump_json().encode(), headers)
                propagate.inject(headers)
                # One budget for both: a broker that stalls the publish also times out.
                async with asyncio.timeout(timeout):
                    await self._producer.send_and_wait(
                        topic,
                        sealed,
                        headers=[(name, value.encode()) for name, value in headers.items()],
                    )
                    reply = await future
        except KafkaError as error:
            self._metrics.replies.labels(service, message_type, "unavailable").inc()
            raise Unavailable(
                "the request could not be published", details={"kafka_error": type(error).__name__}
            ) from None
        except TimeoutError:
            self._remember_expired(correlation_id)
            self._metrics.timeouts.labels(service, message_type).inc()
            raise DeadlineExceeded(
                "no reply before the deadline",
                details={"timeout_seconds": timeout, "type": message_type},
            ) from None
        finally:
            self._pending.pop(correlation_id, None)
            self._metrics.in_flight.labels(service).dec()

        self._metrics.latency.labels(service, message_type).observe(time.monotonic() - started)
        try:
            remote = reply.error()
        except ValidationError:
            raise InternalError("the worker sent a malformed error reply") from None
        if remote is not None:
            self._metrics.replies.labels(service, message_type, "error").inc()
            raise error_for_code(remote.code, remote.message, remote.details)
        self._metrics.replies.labels(service, message_type, "ok").inc()
        return reply.body

    async def publish(
        self,
        topic: str,
        message_type: str,
        payload: BaseModel,
        *,
        key: str | None = None,
        principal: str | None = None,
    ) -> str:
        """Publish a one-way message (no reply); return its ``"<partition>:<offset>"``.

        Returns once the message is durable (``acks=all``): the token orders it for
        read-your-writes. ``key`` keeps messages with the same key in order.
        """
        if self._producer is None:
            msg = "the requester is not started"
            raise RuntimeError(msg)
        with _tracer.start_as_current_span(
            f"{topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": topic,
                "x0.message_type": message_type,
            },
        ):
            headers = {Headers.TYPE: message_type, "content-type": "application/json"}
            if principal:
                headers[Headers.PRINCIPAL] = principal
            propagate.inject(headers)
            try:
                metadata = await self._producer.send_and_wait(
                    topic,
                    payload.model_dump_json().encode(),
                    key=None if key is None else key.encode(),
                    headers=[(name, value.encode()) for name, value in headers.items()],
                )
            except KafkaError as error:
                raise Unavailable(
                    "the message could not be published",
                    details={"kafka_error": type(error).__name__},
                ) from None
        return f"{metadata.partition}:{metadata.offset}"

    async def end_offset(self, topic: str, partition: int) -> int | None:
        """The offset the next message of ``topic``'s ``partition`` will get; None when
        the topic has no such partition. For checking a version token a caller holds:
        every offset the log has issued is below it."""
        if self._consumer is None:
            msg = "the requester is not started"
            raise RuntimeError(msg)
        try:
            if self._consumer.partitions_for_topic(topic) is None:
                # Track the topic's metadata too (aiokafka has no public call for it),
                # so that its partitions and their leaders are known from now on. The
                # update add_topic starts may have been asked before the topic was
                # added: ask again once it is.
                client = self._consumer._client
                await client.add_topic(topic)
                await client.force_metadata_update()
            partitions = self._consumer.partitions_for_topic(topic) or set()
            if partition not in partitions:
                return None
            place = TopicPartition(topic, partition)
            offsets: dict[TopicPartition, int] = await self._consumer.end_offsets([place])
        except KafkaError as error:
            raise Unavailable(
                "the log's end could not be read", details={"kafka_error": type(error).__name__}
            ) from None
        return offsets[place]

    def _remember_expired(self, correlation_id: str) -> None:
        self._expired[correlation_id] = None
        if len(self._expired) > _EXPIRED_MEMORY:
            self._expired.popitem(last=False)

    async def _read_replies(self) -> None:
        assert self._consumer is not None
        while True:
            try:
                batches = await self._consumer.getmany(timeout_ms=1000)
            except KafkaError:
                # aiokafka reconnects by itself; keep the reader alive meanwhile.
                logger.exception("reading replies failed; retrying")
                await asyncio.sleep(1)
                continue
            for records in batches.values():
                for record in records:
                    self._deliver(dict(record.headers or ()), record.value)

    def _deliver(self, headers: dict[str, bytes], value: bytes | None) -> None:
        correlation_id = headers.get(Headers.CORRELATION_ID, b"").decode(errors="replace")
        future = self._pending.get(correlation_id)
        if future is None or future.done():
            reason = "late" if correlation_id in self._expired else "unknown"
            self._metrics.unmatched_replies.labels(self._metrics.service, reason).inc()
            return
        outcome = headers.get(Headers.OUTCOME)
        if outcome not in (b"result", b"error"):
            logger.warning("reply without an outcome dropped", extra={"cid": correlation_id})
            future.set_exception(InternalError("the worker sent a malformed reply"))
            return
        try:
            opened = self._sealer.open(
                value or b"", {name: raw.decode(errors="replace") for name, raw in headers.items()}
            )
        except SealError:
            logger.warning("reply that does not open dropped", extra={"cid": correlation_id})
            future.set_exception(InternalError("the worker sent a reply that does not open"))
            return
        future.set_result(Reply("result" if outcome == b"result" else "error", opened))
