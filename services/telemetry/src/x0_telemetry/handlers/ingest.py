"""The ingest: batches of ``x0.telemetry.events`` into PostgreSQL and Redis.

Consumer choice: a FastStream batch subscriber on the service's broker
(``batch=True``, ``AckPolicy.MANUAL``), so ``KafkaTelemetryMiddleware`` makes one
consumer span per batch, linked to each event's producer span (the SDK keeps 128
links per span unless ``OTEL_SPAN_LINK_COUNT_LIMIT`` says otherwise), and the DB
and Redis spans of the write are its children. Two things FastStream would get wrong
for us are taken out of its hands:

- its batch parser decodes every header as UTF-8 and fails the *whole* batch on one
  bad byte; here headers are decoded leniently for tracing, and strictly per record
  by :func:`~x0_telemetry.domain.events.check_record`, which dead-letters only that
  record (``undecodable``);
- a handler exception would be logged and the batch skipped while the consumer's
  position moves on (a later commit would then skip it for good); here the handler
  never raises: on any failure it seeks each partition back to the batch's first
  offset and backs off, so the same records come again.

Per batch, in order: check each record → create any missing daily partition → at
the same time, one PostgreSQL transaction (raw rows + rollups of the rows really
inserted) and one Redis script (the newest event per node and kind, applied only if
newer than the stored state; run for every valid event, even one PostgreSQL had
already, so a crash between the two writes heals on redelivery) → dead-letter the
refused records (as the Responder does: same base, same ``x0-dlq-*`` headers) and
wait until the broker holds them → commit the batch's offsets. A crash anywhere
before the commit re-delivers the batch; every step is idempotent. Dead letters go
out only once the writes succeeded, so a batch read again does not send them twice.

Subscription, readiness, topic creation and dead letters come from
:class:`~x0_common.kafka.consumer.Consumer`, the Responder's base.

Tenancy: an event with an ``x0-principal`` header (the gateway's) belongs to the
principal's tenant, which must hold ``telemetry:write``; an event without one (an
upstream producer publishing straight to Kafka) belongs to ``X0_TELEMETRY_DEFAULT_TENANT``
(``default``). A malformed principal is dead-lettered as ``unauthenticated``, one
without the scope as ``forbidden``. Each tenant may have ``X0_TELEMETRY_MAX_NODES_PER_TENANT``
live nodes (one Redis script per tenant per batch admits them, atomically across
replicas); the events of a node past the quota are dead-lettered as
``quota_exceeded``. Rows and latest state are keyed by tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.kafka.message import FAKE_CONSUMER

from x0_common.contract import Operation
from x0_common.errors import X0Error
from x0_common.events.envelope import Headers
from x0_common.events.telemetry import EVENTS_TOPIC, NodeHeartbeat, NodeMetrics
from x0_common.kafka.consumer import Assignment, Consumer, principal_of
from x0_common.kafka.dead_letters import origin
from x0_common.metrics import ResponderMetrics
from x0_telemetry.adapters.history import event_row
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.domain.events import (
    EVENT_OPERATIONS,
    EVENT_TYPES,
    KIND_LABEL,
    Limits,
    Refused,
    check_record,
    decode_headers,
)
from x0_telemetry.domain.state import epoch_ms, latest_update, newest_per_node
from x0_telemetry.metrics import SERVICE

logger = logging.getLogger(__name__)

_MAX_BACKOFF = 5.0


class Ingest(Consumer):
    """The batch consumer of ``x0.telemetry.events``."""

    def __init__(
        self,
        broker: KafkaBroker,
        deps: TelemetryDeps,
        responder_metrics: ResponderMetrics,
        *,
        topic: str = EVENTS_TOPIC,
    ) -> None:
        settings = deps.settings
        super().__init__(
            broker,
            topic=topic,
            group_id=settings.ingest_group_id,
            settings=settings.common.kafka,
            metrics=responder_metrics,
            listener=Assignment(),
            partitions=settings.partitions,
            batch=True,
            max_records=settings.ingest_max_batch,
            batch_timeout_ms=settings.ingest_batch_timeout_ms,
            parser=_parse_batch,
        )
        self._deps = deps
        self._limits = Limits(
            max_clock_skew=timedelta(seconds=settings.max_clock_skew_seconds),
            retention=timedelta(days=settings.retention_days),
        )
        self._busy = asyncio.Lock()
        self._stopping = False
        self._failures = 0

    async def close(self, timeout: float = 10.0) -> None:
        """Let the batch in progress finish (before the broker stops); take no more."""
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout), self._busy:
                pass

    async def _consume(self, message: KafkaMessage) -> None:
        records = message.raw_message
        assert isinstance(records, tuple)
        if self._stopping or not records:
            return  # not committed: the next owner gets these records
        async with self._busy:
            try:
                await self._process(records)
            except Exception:  # never skip a batch: rewind and retry it
                self._failures += 1
                delay = min(_MAX_BACKOFF, 0.1 * 2**self._failures)
                logger.warning(
                    "ingest batch failed; it will be read again",
                    exc_info=True,
                    extra={"events": len(records), "retry_in_s": delay},
                )
                self._rewind(records)
                await asyncio.sleep(delay)
                return
            self._failures = 0
            await self._commit(records)

    def _tenant_of(self, record: ConsumerRecord[Any, Any]) -> str | Refused:
        """The tenant of an accepted record, or why it is refused (its principal)."""
        headers, _ = decode_headers(record.headers)
        operation: Operation = EVENT_OPERATIONS[headers[Headers.TYPE]]
        try:
            sender = principal_of(
                headers, operation, anonymous_tenant=self._deps.settings.default_tenant
            )
        except X0Error as error:
            label = KIND_LABEL[EVENT_TYPES[operation.message_type]]
            return Refused(error.code, error.message, label, headers)
        return sender.tenant

    async def _admitted(
        self,
        accepted: list[tuple[ConsumerRecord[Any, Any], str, NodeHeartbeat | NodeMetrics]],
        refused: list[tuple[ConsumerRecord[Any, Any], Refused]],
    ) -> list[tuple[str, NodeHeartbeat | NodeMetrics]]:
        """The events of nodes within their tenant's quota; the others join ``refused``."""
        limit = self._deps.settings.max_nodes_per_tenant
        now_ms = epoch_ms(datetime.now(UTC))
        nodes: dict[str, list[str]] = defaultdict(list)
        for _, tenant, event in accepted:
            if event.node_id not in nodes[tenant]:
                nodes[tenant].append(event.node_id)
        over: dict[str, set[str]] = {}
        for tenant, ids in nodes.items():
            over[tenant] = await self._deps.latest.of(tenant).admit(ids, now_ms, limit)
        kept: list[tuple[str, NodeHeartbeat | NodeMetrics]] = []
        for record, tenant, event in accepted:
            if event.node_id in over[tenant]:
                headers, _ = decode_headers(record.headers)
                detail = f"the tenant's quota of {limit} nodes is used up"
                refused.append(
                    (record, Refused("quota_exceeded", detail, KIND_LABEL[type(event)], headers))
                )
            else:
                kept.append((tenant, event))
        return kept

    async def _process(self, records: tuple[ConsumerRecord[Any, Any], ...]) -> None:
        metrics = self._deps.metrics
        now = datetime.now(UTC)
        checked_ok: list[tuple[ConsumerRecord[Any, Any], str, NodeHeartbeat | NodeMetrics]] = []
        refused: list[tuple[ConsumerRecord[Any, Any], Refused]] = []
        for record in records:
            checked = check_record(record.headers, record.value, limits=self._limits, now=now)
            tenant = checked if isinstance(checked, Refused) else self._tenant_of(record)
            if isinstance(tenant, Refused):
                refused.append((record, tenant))
            else:
                assert not isinstance(checked, Refused)
                checked_ok.append((record, tenant, checked))
        accepted = await self._admitted(checked_ok, refused) if checked_ok else []

        started = time.perf_counter()
        inserted: dict[str, int] = {}
        if accepted:
            await self._deps.partitions.ensure(
                {e.timestamp.astimezone(UTC).date() for _, e in accepted}
            )
            rows = [event_row(e, tenant) for tenant, e in accepted]
            by_tenant: dict[str, list[NodeHeartbeat | NodeMetrics]] = defaultdict(list)
            for tenant, event in accepted:
                by_tenant[tenant].append(event)
            now_ms = epoch_ms(datetime.now(UTC))
            latest = [
                self._deps.latest.of(tenant).apply(
                    [latest_update(e) for e in newest_per_node(events)], now_ms
                )
                for tenant, events in by_tenant.items()
            ]
            # Independent stores, written concurrently: the batch is done when all are.
            inserted, _ = await asyncio.gather(
                self._deps.history.write(rows), asyncio.gather(*latest)
            )
        write_seconds = time.perf_counter() - started
        # Handed to the producer together (they share produce requests), then awaited.
        letters = [
            await self.dead_letter(
                record.value or b"",
                why.headers,
                reason=why.reason,
                detail=why.detail,
                origin=origin(record.topic, record.partition, record.offset),
                # The node's key: a replay from the DLQ lands on the same partition.
                key=record.key,
                correlation_id=why.headers.get(Headers.CORRELATION_ID),
            )
            for record, why in refused
        ]
        if letters:
            await asyncio.gather(*letters)

        # Counted once the batch is durable: a batch read again is not counted twice.
        metrics.batch_size.labels(SERVICE).observe(len(records))
        if accepted:
            metrics.write_seconds.labels(SERVICE).observe(write_seconds)
        per_type: dict[str, int] = defaultdict(int)
        for _, event in accepted:
            per_type[KIND_LABEL[type(event)]] += 1
        for kind, count in per_type.items():
            stored = inserted.get(kind, 0)
            metrics.events.labels(SERVICE, kind, "stored").inc(stored)
            metrics.events.labels(SERVICE, kind, "duplicate").inc(count - stored)
        for _, why in refused:
            metrics.events.labels(SERVICE, why.type_label, "dead_lettered").inc()

    def _rewind(self, records: tuple[ConsumerRecord[Any, Any], ...]) -> None:
        consumer = self._subscriber.consumer
        if consumer is None:
            return
        for partition, first in _offsets(records, min).items():
            # A partition revoked meanwhile is the next owner's to read.
            with contextlib.suppress(IllegalStateError, AssertionError):
                consumer.seek(partition, first)

    async def _commit(self, records: tuple[ConsumerRecord[Any, Any], ...]) -> None:
        consumer = self._subscriber.consumer
        if consumer is None:
            return
        offsets = {
            partition: OffsetAndMetadata(last + 1, "")
            for partition, last in _offsets(records, max).items()
        }
        try:
            await consumer.commit(offsets)
        except (KafkaError, OSError) as error:
            # Lost the partitions to a rebalance: the next owner re-reads; writes are idempotent.
            logger.warning("ingest offset commit failed: %s", type(error).__name__)


def _offsets(
    records: tuple[ConsumerRecord[Any, Any], ...], pick: Callable[[int, int], int]
) -> dict[TopicPartition, int]:
    """One offset per partition of ``records``: ``min`` gives the first, ``max`` the last."""
    chosen: dict[TopicPartition, int] = {}
    for record in records:
        key = TopicPartition(record.topic, record.partition)
        chosen[key] = pick(chosen.get(key, record.offset), record.offset)
    return chosen


async def _parse_batch(records: tuple[ConsumerRecord[Any, Any], ...]) -> KafkaMessage:
    """FastStream's batch message, with headers decoded leniently (for tracing only)."""
    batch_headers = []
    for record in records:
        headers = {name: (value or b"").decode(errors="replace") for name, value in record.headers}
        # The tracing middleware links the batch span to each message's producer span, but
        # only for messages with a correlation id (which upstream events need not carry).
        headers.setdefault(Headers.CORRELATION_ID, f"{record.partition}/{record.offset}")
        batch_headers.append(headers)
    first = batch_headers[0] if batch_headers else {}
    return KafkaMessage(
        body=[record.value or b"" for record in records],
        headers=first,
        batch_headers=batch_headers,
        reply_to="",
        content_type=first.get("content-type"),
        message_id=f"{records[0].offset}-{records[-1].offset}" if records else "",
        correlation_id=first.get(Headers.CORRELATION_ID),
        raw_message=records,
        consumer=FAKE_CONSUMER,
    )
