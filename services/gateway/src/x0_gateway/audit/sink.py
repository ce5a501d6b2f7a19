"""The audit consumer: ``x0.audit`` into ``gateway.audit_log``, at least once.

Every gateway replica runs one, in one consumer group (``X0_GATEWAY_AUDIT__GROUP_ID``),
so the topic's partitions are shared among the replicas. A batch is stored in one
insert (a record already stored is skipped, by id), then its offsets are committed:
a crash between the two stores nothing twice. While PostgreSQL is away the batch is
retried with backoff and nothing is committed. A record that does not parse (no
service writes one) goes to ``x0.audit.dlq`` with the reason, and consumption goes
on. Partitions are made and expired here too (:meth:`AuditLog.maintain`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import IllegalStateError, KafkaError
from pydantic import ValidationError

from x0_common.events.audit import PARTITIONS, TOPIC_RETENTION_MS, AuditRecord
from x0_common.kafka.clients import consumer_options, ensure_topics, producer_options
from x0_common.kafka.dead_letters import dead_letter_headers, dlq_topic, origin
from x0_common.postgres import TRANSIENT_ERRORS
from x0_common.settings import KafkaSettings
from x0_gateway.audit.log import AuditLog
from x0_gateway.audit.settings import AuditSettings

logger = logging.getLogger(__name__)

_MAX_BACKOFF_SECONDS = 5.0


async def ensure_audit_topic(kafka: KafkaSettings, settings: AuditSettings) -> None:
    """``x0.audit`` and its dead-letter topic, with their partitions and retention."""
    await ensure_topics(
        kafka,
        [settings.topic, dlq_topic(settings.topic)],
        partitions=PARTITIONS,
        config={"retention.ms": str(TOPIC_RETENTION_MS)},
    )


class AuditSink:
    """Copies audit records from Kafka into PostgreSQL until stopped."""

    def __init__(self, kafka: KafkaSettings, settings: AuditSettings, log: AuditLog) -> None:
        self._kafka = kafka
        self._settings = settings
        self._log = log
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._maintained_at = float("-inf")

    async def start(self) -> None:
        """Join the group and start copying."""
        self._consumer = AIOKafkaConsumer(
            self._settings.topic,
            **consumer_options(self._kafka),
            group_id=self._settings.group_id,
            auto_offset_reset="earliest",
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._run(), name="x0-audit-sink")

    async def stop(self) -> None:
        """Stop copying (the current batch is stored again by whoever reads it next)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for client in (self._consumer, self._producer):
            if client is not None:
                await client.stop()
        self._consumer = self._producer = None

    async def _run(self) -> None:
        assert self._consumer is not None
        while True:
            await self._maintain()
            try:
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=500)
            except KafkaError as error:
                logger.warning("audit consumer: Kafka error %s; retrying", type(error).__name__)
                await asyncio.sleep(1)
                continue
            records: list[AuditRecord] = []
            for batch in batches.values():
                for message in batch:
                    record = await self._parse(message)
                    if record is not None and not self._log.expired(record):
                        records.append(record)
            if not batches:
                continue
            try:
                await self._store(records)
                await self._consumer.commit()
            except Exception:
                # A rebalance refused the commit, or the database refused the batch:
                # read again from the last commit (stored records are skipped by id).
                logger.exception("audit batch not committed; reading it again")
                await asyncio.sleep(1)
                # A rebalance may have taken the partitions meanwhile; a new assignment
                # starts from the committed offsets anyway.
                with contextlib.suppress(IllegalStateError):
                    await self._consumer.seek_to_committed()

    async def _parse(self, message: Any) -> AuditRecord | None:
        try:
            return AuditRecord.model_validate_json(message.value or b"")
        except ValidationError as invalid:
            places = ", ".join(".".join(map(str, e["loc"])) for e in invalid.errors())
            await self._dead_letter(message, places or "undecodable")
            return None

    async def _store(self, records: list[AuditRecord]) -> None:
        delay = 0.1
        while True:
            try:
                await self._log.append(records)
            except TRANSIENT_ERRORS as error:
                logger.warning("audit records not stored (%s); retrying", type(error).__name__)
                await asyncio.sleep(delay)
                delay = min(_MAX_BACKOFF_SECONDS, delay * 2)
            else:
                return

    async def _maintain(self) -> None:
        if time.monotonic() - self._maintained_at < self._settings.maintenance_interval_seconds:
            return
        try:
            dropped = await self._log.maintain()
        except TRANSIENT_ERRORS as error:
            logger.warning("audit partitions not maintained (%s)", type(error).__name__)
            return
        self._maintained_at = time.monotonic()
        if dropped:
            logger.info("audit partitions past the retention dropped: %s", ", ".join(dropped))

    async def _dead_letter(self, message: Any, detail: str) -> None:
        if self._producer is None:
            self._producer = AIOKafkaProducer(**producer_options(self._kafka))
            await self._producer.start()
        headers = {name: raw.decode(errors="replace") for name, raw in message.headers or ()}
        headers = dead_letter_headers(
            headers,
            reason="schema_mismatch",
            detail=detail,
            origin=origin(message.topic, message.partition, message.offset),
        )
        await self._producer.send_and_wait(
            dlq_topic(self._settings.topic),
            message.value,
            key=message.key,
            headers=[(name, value.encode()) for name, value in headers.items()],
        )
        logger.warning("audit record dead-lettered: %s", detail)
