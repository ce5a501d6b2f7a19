"""Commit offsets in the background, and only for messages whose work is durable.

A responder handles one partition's messages in order and marks each one done
after its reply or side effect is durable. Committing every message in line
would put a broker round trip between any two messages; instead the highest
done offset per partition is committed every ``interval`` seconds, when the
partitions are revoked, and at shutdown. A crash re-delivers at most one
interval's worth of done messages: at-least-once, which handlers must tolerate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

logger = logging.getLogger(__name__)


class OffsetCommitter(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks done offsets for one consumer and commits them periodically."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._consumer: AIOKafkaConsumer | None = None
        self._done: dict[TopicPartition, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        # Set while the group assigns this consumer partitions (worker readiness).
        self.has_partitions = asyncio.Event()

    def mark_done(
        self, consumer: AIOKafkaConsumer, topic: str, partition: int, offset: int
    ) -> None:
        """Record that the message at ``offset`` and every one before it are done."""
        self._consumer = consumer
        self._done[TopicPartition(topic, partition)] = offset
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._commit_periodically(), name="x0-offsets")

    async def commit(self) -> None:
        """Commit what is done now (also called on revocation and at shutdown)."""
        async with self._lock:
            if self._closed or self._consumer is None or not self._done:
                return
            offsets = {tp: OffsetAndMetadata(offset + 1, "") for tp, offset in self._done.items()}
            self._done.clear()
            try:
                await self._consumer.commit(offsets)
            except (KafkaError, OSError) as error:
                # Lost the partitions to a rebalance, or the broker: the next owner
                # re-delivers from the last committed offset; handlers are idempotent.
                logger.warning("offset commit failed: %s", type(error).__name__)

    async def close(self) -> None:
        """Stop the periodic task and commit a last time.

        Call it before the consumer stops: aiokafka runs no revocation callback on
        ``stop()``, and a commit through a stopped consumer leaks a connection.
        Whatever finishes after this is re-delivered to the next owner.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.commit()
        self._closed = True

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:  # noqa: ARG002
        """Commit before the group hands our partitions to another member."""
        self.has_partitions.clear()
        await self.commit()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Consumption resumes from the committed offsets; only readiness changes."""
        if assigned:
            self.has_partitions.set()

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.commit()
