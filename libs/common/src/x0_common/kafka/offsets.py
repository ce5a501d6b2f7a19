"""Commit offsets in the background, and only for messages whose work is durable.

A responder hands each message's last step (publishing its reply or dead
letter) to a task and moves on to the next message, so the publishes of many
messages share produce requests. The committer keeps, per partition, the
messages in offset order with their pending task, and commits the highest
offset below which every task has finished: every ``interval`` seconds, when
partitions are revoked, and at shutdown. A crash re-delivers what was not
committed yet: at-least-once, which handlers must tolerate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

logger = logging.getLogger(__name__)


class OffsetCommitter(ConsumerRebalanceListener):  # type: ignore[misc]
    """Tracks one consumer's messages until durable and commits their offsets."""

    def __init__(self, interval: float, max_pending: int = 1000) -> None:
        self._interval = interval
        self._max_pending = max_pending
        self._consumer: AIOKafkaConsumer | None = None
        self._pending: dict[TopicPartition, deque[tuple[int, asyncio.Task[None] | None]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        # Set while the group assigns this consumer partitions (worker readiness).
        self.has_partitions = asyncio.Event()

    async def track(
        self,
        consumer: AIOKafkaConsumer,
        topic: str,
        partition: int,
        offset: int,
        work: asyncio.Task[None] | None,
    ) -> None:
        """Record the message at ``offset``; it is done once ``work`` (if any) finishes.

        Waits for the oldest pending work when too much is outstanding, so a slow
        broker slows consumption instead of growing memory.
        """
        self._consumer = consumer
        queue = self._pending.setdefault(TopicPartition(topic, partition), deque())
        queue.append((offset, work))
        if sum(len(q) for q in self._pending.values()) > self._max_pending:
            oldest = next((w for _, w in queue if w is not None and not w.done()), None)
            if oldest is not None:
                await asyncio.shield(oldest)
        if not self._closed and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._commit_periodically(), name="x0-offsets")

    def _committable(self) -> dict[TopicPartition, OffsetAndMetadata]:
        offsets = {}
        for partition, queue in self._pending.items():
            last_done = None
            while queue and (queue[0][1] is None or queue[0][1].done()):
                last_done = queue.popleft()[0]
            if last_done is not None:
                offsets[partition] = OffsetAndMetadata(last_done + 1, "")
        return offsets

    async def commit(self) -> None:
        """Commit what is done now (also called on revocation and at shutdown)."""
        async with self._lock:
            offsets = self._committable()
            if self._closed or self._consumer is None or not offsets:
                return
            try:
                await self._consumer.commit(offsets)
            except (KafkaError, OSError) as error:
                # Lost the partitions to a rebalance, or the broker: the next owner
                # re-delivers from the last committed offset; handlers are idempotent.
                logger.warning("offset commit failed: %s", type(error).__name__)

    async def close(self, timeout: float = 10.0) -> None:
        """Let pending work finish (up to ``timeout`` s), then commit a last time.

        Call it before the consumer stops: aiokafka runs no revocation callback on
        ``stop()``, and a commit through a stopped consumer leaks a connection.
        Whatever finishes after this is re-delivered to the next owner.
        """
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        work = [w for q in self._pending.values() for _, w in q if w is not None]
        if work:
            await asyncio.wait(work, timeout=timeout)
        await self.commit()
        self._closed = True

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        """Commit before the group hands our partitions to another member."""
        self.has_partitions.clear()
        # Replies in flight take milliseconds; waiting for them spares duplicates.
        work = [w for p in revoked for _, w in self._pending.get(p, ()) if w is not None]
        if work:
            await asyncio.wait(work, timeout=5)
        await self.commit()
        for partition in revoked:
            # Their unfinished messages will be re-delivered to the new owner.
            self._pending.pop(partition, None)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        """Consumption resumes from the committed offsets; only readiness changes."""
        if assigned:
            self.has_partitions.set()

    async def _commit_periodically(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.commit()
