"""What every worker consumer shares, whether it answers requests or writes batches.

:class:`Consumer` is the base of the request/reply :class:`~x0_common.kafka.Responder`
and of the telemetry ingest's batch consumer. It owns:

- the FastStream subscriber, with x0's delivery options set on purpose: manual
  acknowledgement (offsets are committed by the consumer itself, only once the work
  is durable), ``auto_offset_reset=earliest``, the fetch and session timeouts of
  :class:`~x0_common.settings.KafkaSettings`, and the message handed over undecoded;
- readiness (:attr:`Consumer.assigned`: the group gives it partitions) and the
  creation of its topic and dead-letter topic;
- dead letters in the one header layout (:mod:`x0_common.kafka.dead_letters`),
  counted and logged, and publishing retried with backoff until the broker takes it;
- who sent a message: :func:`principal_of` reads the ``x0-principal`` header.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aiokafka import ConsumerRebalanceListener, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage
from faststream.message import StreamMessage

from x0_common.contract.operation import Operation
from x0_common.events.envelope import Headers
from x0_common.kafka.clients import ensure_topics, fetch_options
from x0_common.kafka.dead_letters import dead_letter_headers, dlq_topic
from x0_common.metrics import ResponderMetrics
from x0_common.principal import Principal
from x0_common.settings import KafkaSettings

logger = logging.getLogger(__name__)

# The subject of a message an upstream producer published without a principal.
UPSTREAM_SUBJECT: Final = "upstream-producer"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for transient failures: full jitter, capped, bounded attempts."""

    max_attempts: int = 5
    base_delay: float = 0.05
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        return random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))  # noqa: S311


class Listener(Protocol):
    """A rebalance listener that knows whether the consumer holds partitions."""

    has_partitions: asyncio.Event


class Assignment(ConsumerRebalanceListener):  # type: ignore[misc]
    """The plain listener: readiness needs the consumer to hold partitions."""

    def __init__(self) -> None:
        self.has_partitions = asyncio.Event()

    async def on_partitions_revoked(self, _revoked: list[TopicPartition]) -> None:
        """The group takes our partitions away."""
        self.has_partitions.clear()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """The group gives us partitions."""
        if assigned:
            self.has_partitions.set()


def principal_of(
    headers: Mapping[str, str], operation: Operation, *, anonymous_tenant: str | None = None
) -> Principal:
    """Who sent a message of ``operation``, from its ``x0-principal`` header.

    :class:`~x0_common.errors.Unauthenticated` when the header is missing or malformed;
    :class:`~x0_common.errors.Forbidden` when the principal lacks the operation's scope.
    ``internal`` operations need a principal (the gateway forwards its caller's) but no
    scope: no credential grants ``internal``. An operation upstream producers may
    publish straight to Kafka (``producers``) may come without a principal: it then
    belongs to ``anonymous_tenant`` when one is given.
    """
    value = headers.get(Headers.PRINCIPAL)
    if not value and operation.producers and anonymous_tenant is not None:
        return Principal(
            tenant=anonymous_tenant,
            subject=UPSTREAM_SUBJECT,
            scopes=frozenset({operation.scope}),
        )
    principal = Principal.from_header(value)
    if operation.scope != "internal":
        principal.require(operation.scope)
    return principal


class Consumer:
    """The subscriber of one topic, its dead letters and its readiness (module docstring).

    Subclasses implement :meth:`_consume` (one message, or a batch with ``batch=True``
    in ``options``) and :meth:`close`.
    """

    def __init__(
        self,
        broker: KafkaBroker,
        *,
        topic: str,
        group_id: str,
        settings: KafkaSettings,
        metrics: ResponderMetrics,
        listener: ConsumerRebalanceListener,
        partitions: int = 1,
        retry: RetryPolicy | None = None,
        retention_ms: int | None = None,
        **options: Any,
    ) -> None:
        self.topic = topic
        # Partitions to create the topic with: they bound how many workers share it.
        self.partitions = partitions
        # The topics' retention when this code creates them (None: the broker's default).
        self.retention_ms = retention_ms
        self.dlq_topic = dlq_topic(topic)
        self._broker = broker
        self._settings = settings
        self._metrics = metrics
        self._retry = retry or RetryPolicy()
        self._listener: Listener = listener
        self._subscriber = broker.subscriber(
            topic,
            group_id=group_id,
            ack_policy=AckPolicy.MANUAL,
            no_reply=True,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.fetch_max_wait_ms,
            # Fetches that hold the largest message the gateway accepts.
            **fetch_options(settings),
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            listener=listener,
            # The handler gets the message itself; it decodes and validates the body.
            decoder=_the_message_itself,
            title=topic,
            **options,
        )
        self._subscriber(self._consume)

    async def _consume(self, message: KafkaMessage) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """Finish or hand back work in progress; call before the broker stops."""
        raise NotImplementedError

    @property
    def assigned(self) -> bool:
        """True while the group gives this worker's consumer at least one partition."""
        return self._listener.has_partitions.is_set()

    async def wait_assigned(self, timeout: float = 30.0) -> None:
        """Wait until :attr:`assigned` (raises ``TimeoutError`` after ``timeout`` s)."""
        async with asyncio.timeout(timeout):
            await self._listener.has_partitions.wait()

    async def ensure_topics(self) -> None:
        """Create the topic and its dead-letter topic if they are missing."""
        config = None if self.retention_ms is None else {"retention.ms": str(self.retention_ms)}
        await ensure_topics(
            self._settings, [self.topic, self.dlq_topic], partitions=self.partitions, config=config
        )

    async def dead_letter(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        reason: str,
        detail: str,
        origin: str,
        key: bytes | None = None,
        correlation_id: str | None = None,
    ) -> asyncio.Task[None]:
        """Hand a dead letter to the producer now; the task ends once it is durable.

        ``key`` keeps the original's (a replay lands on the same partition).
        """
        letter_headers = dead_letter_headers(headers, reason=reason, detail=detail, origin=origin)
        self._metrics.dead_lettered.labels(self._metrics.service, self.topic, reason).inc()
        logger.warning("message dead-lettered", extra={"reason": reason, "origin": origin})
        return await self._send(
            body, self.dlq_topic, key=key, correlation_id=correlation_id, headers=letter_headers
        )

    async def _send(
        self,
        body: bytes,
        topic: str,
        *,
        correlation_id: str | None,
        headers: dict[str, str],
        key: bytes | None = None,
        give_up_at: float | None = None,
    ) -> asyncio.Task[None]:
        """Hand the message to the producer now; return a task that ends once it is durable."""
        try:
            delivery = await self._broker.publish(
                body,
                topic,
                key=key,
                correlation_id=correlation_id,
                headers=headers,
                no_confirm=True,
            )
        except Exception:  # noqa: BLE001 - the task below retries every failure
            delivery = None
        return asyncio.get_running_loop().create_task(
            self._confirm(
                delivery,
                body,
                topic,
                key=key,
                correlation_id=correlation_id,
                headers=headers,
                give_up_at=give_up_at,
            )
        )

    async def _confirm(
        self,
        delivery: asyncio.Future[Any] | None,
        body: bytes,
        topic: str,
        *,
        key: bytes | None,
        correlation_id: str | None,
        headers: dict[str, str],
        give_up_at: float | None,
    ) -> None:
        """Wait for the broker's acknowledgement; publish again with backoff until one comes.

        The offset must not be committed before this ends, so the only ways out
        are success, or (for a reply) the caller's deadline passing: then nobody
        waits for it any more.
        """
        if delivery is not None:
            try:
                await delivery
            except Exception:  # noqa: BLE001 - retried below, whatever it was
                logger.warning("publish failed, retrying", extra={"topic": topic})
            else:
                return
        attempt = 0
        while give_up_at is None or time.time() < give_up_at:
            attempt += 1
            await asyncio.sleep(self._retry.delay(min(attempt, 10)))
            try:
                await self._broker.publish(
                    body, topic, key=key, correlation_id=correlation_id, headers=headers
                )
            except Exception as error:  # noqa: BLE001 - any publish failure is retried
                logger.warning(
                    "publish failed, retrying",
                    extra={"topic": topic, "error": type(error).__name__, "attempt": attempt},
                )
            else:
                return
        logger.warning("reply dropped after its deadline", extra={"topic": topic})


async def _the_message_itself(message: StreamMessage[Any]) -> Any:
    return message
