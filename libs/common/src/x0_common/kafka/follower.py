"""Follow every partition of one topic from chosen offsets, without a consumer group.

A :class:`LogFollower` is how a replica keeps derived state (an in-memory index, a
cache) in step with a log that *every* replica must read in full: there is no
consumer group, so no partition is ever given to another member and no rebalance
pauses the stream. The caller decides where reading starts (offsets it recorded
with its own state, e.g. in a snapshot) and keeps its progress itself; nothing is
committed to Kafka.

Life cycle::

    follower = LogFollower(settings, topic="x0.rag.index", handler=apply)
    await follower.open()                        # assign all partitions
    ends = await follower.end_offsets()          # e.g. before reading a database
    await follower.start({0: 1200, 1: 0})        # missing partitions start at the beginning
    ...
    follower.positions()  /  await follower.lag()
    await follower.stop()

``handler`` gets each fetched batch as a list of records, each partition's records
in offset order. When it raises, the same batch is handed to it again after a
backoff (capped, until it succeeds or the follower stops): a record is never
skipped, so the handler must tolerate seeing a record twice. A start offset outside
the log (below its start after retention, or past its end) is refused with
:class:`OffsetOutOfRange`; if the log moves past the follower while it runs, the
follower stops and :attr:`LogFollower.error` says why: its state can no longer be
brought up to date from the log alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.errors import OffsetOutOfRangeError as _KafkaOffsetOutOfRange

from x0_common.kafka.clients import consumer_options
from x0_common.settings import KafkaSettings

logger = logging.getLogger(__name__)

# aiokafka ships no type information; a record has topic, partition, offset, key, value.
Record = Any
BatchHandler = Callable[[list[Record]], Awaitable[None]]


class OffsetOutOfRange(Exception):
    """A requested or current position lies outside the partition's retained log."""

    def __init__(self, topic: str, outside: Mapping[int, tuple[int, int, int]]) -> None:
        described = ", ".join(
            f"partition {p}: offset {o} not in [{lo}, {hi}]"
            for p, (o, lo, hi) in sorted(outside.items())
        )
        super().__init__(f"{topic}: {described}")
        self.topic = topic
        # partition -> (offset, first retained offset, end offset)
        self.outside = dict(outside)


class LogFollower:
    """Reads all partitions of ``topic`` from given offsets and hands batches to ``handler``."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        topic: str,
        handler: BatchHandler,
        max_records: int = 500,
        poll_timeout_ms: int = 500,
        retry_base_delay: float = 0.1,
        retry_max_delay: float = 5.0,
    ) -> None:
        """Nothing connects until :meth:`open` (or :meth:`start`)."""
        if max_records < 1 or poll_timeout_ms < 1:
            msg = "max_records and poll_timeout_ms must be >= 1"
            raise ValueError(msg)
        self.topic = topic
        self._settings = settings
        self._handler = handler
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._retry = (retry_base_delay, retry_max_delay)
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._positions: dict[int, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._progress = asyncio.Condition()
        self._handling = False
        self._closed = False
        self.error: BaseException | None = None

    @property
    def partitions(self) -> list[int]:
        """The topic's partition numbers (known once opened)."""
        return [tp.partition for tp in self._partitions]

    @property
    def running(self) -> bool:
        """True while the reading task is alive (not stopped, not failed)."""
        return self._task is not None and not self._task.done()

    async def open(self) -> None:
        """Connect and assign every partition of the topic (which must exist)."""
        if self._closed:
            msg = "the follower was stopped"
            raise RuntimeError(msg)
        if self._consumer is not None:
            return
        consumer = AIOKafkaConsumer(
            **consumer_options(self._settings),
            group_id=None,
            # Never jump silently: a gap in the log is a gap in the caller's state.
            auto_offset_reset="none",
            max_poll_records=self._max_records,
        )
        await consumer.start()
        try:
            # One metadata round trip. aiokafka's consumer has no public call that
            # returns a topic's partitions without subscribing (which needs a group).
            cluster = await consumer._client.fetch_all_metadata()
            found = cluster.partitions_for_topic(self.topic)
            if not found:
                msg = f"topic {self.topic!r} does not exist"
                raise LookupError(msg)
            self._partitions = [TopicPartition(self.topic, p) for p in sorted(found)]
            consumer.assign(self._partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer

    async def beginning_offsets(self) -> dict[int, int]:
        """The first offset each partition still retains."""
        consumer = await self._opened()
        found = await consumer.beginning_offsets(self._partitions)
        return {tp.partition: int(offset) for tp, offset in found.items()}

    async def end_offsets(self) -> dict[int, int]:
        """The offset the next record of each partition will get (one round trip)."""
        consumer = await self._opened()
        found = await consumer.end_offsets(self._partitions)
        return {tp.partition: int(offset) for tp, offset in found.items()}

    async def start(self, offsets: Mapping[int, int] | None = None) -> None:
        """Start reading at ``offsets`` (partition -> next offset to read).

        Partitions not named start at their first retained offset. Raises
        :class:`OffsetOutOfRange` when a named offset is outside the retained log.
        """
        if self._task is not None:
            msg = "the follower was started already"
            raise RuntimeError(msg)
        consumer = await self._opened()
        beginning = await self.beginning_offsets()
        end = await self.end_offsets()
        wanted = {p: (offsets or {}).get(p, beginning[p]) for p in self.partitions}
        outside = {
            p: (o, beginning[p], end[p])
            for p, o in wanted.items()
            if not beginning[p] <= o <= end[p]
        }
        if outside:
            raise OffsetOutOfRange(self.topic, outside)
        for tp in self._partitions:
            consumer.seek(tp, wanted[tp.partition])
        self._positions = dict(wanted)
        self._task = asyncio.create_task(self._run(consumer), name=f"x0-follow-{self.topic}")

    def positions(self) -> dict[int, int]:
        """Per partition, the next offset to hand over: every record before it was handled."""
        return dict(self._positions)

    async def lags(self) -> dict[int, int]:
        """Per partition, records in the log not handled yet (end offset - position)."""
        end = await self.end_offsets()
        return {p: max(0, end[p] - self._positions.get(p, 0)) for p in self.partitions}

    async def lag(self) -> int:
        """Records in the log not handled yet, over all partitions."""
        return sum((await self.lags()).values())

    async def wait_for_positions(self, offsets: Mapping[int, int], timeout: float) -> None:
        """Wait until every named partition's position reached its offset.

        Raises ``TimeoutError`` after ``timeout`` seconds, or the follower's
        :attr:`error` if it fails meanwhile.
        """

        def reached() -> bool:
            return self.error is not None or all(
                self._positions.get(p, 0) >= o for p, o in offsets.items()
            )

        async with asyncio.timeout(timeout), self._progress:
            await self._progress.wait_for(reached)
        if self.error is not None:
            raise self.error

    async def stop(self) -> None:
        """Stop reading; a batch being handled is finished first. Safe to call twice.

        A stopped follower cannot be opened or started again.
        """
        self._closed = True
        self._stopping.set()
        if self._task is not None:
            if not self._handling:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _opened(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            await self.open()
        assert self._consumer is not None
        return self._consumer

    async def _run(self, consumer: AIOKafkaConsumer) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                fetched = await consumer.getmany(timeout_ms=self._poll_timeout_ms)
            except _KafkaOffsetOutOfRange as error:
                await self._fail(OffsetOutOfRange(self.topic, _outside(error, self._positions)))
                return
            except KafkaError as error:
                failures += 1
                logger.warning(
                    "log follower fetch failed",
                    extra={"topic": self.topic, "error": type(error).__name__},
                )
                await self._pause(failures)
                continue
            failures = 0
            records = [r for tp in sorted(fetched, key=_number) for r in fetched[tp]]
            if records:
                self._handling = True
                try:
                    await self._hand_over(records)
                finally:
                    self._handling = False

    async def _hand_over(self, records: list[Record]) -> None:
        """Give ``records`` to the handler until it takes them, then move the positions."""
        attempt = 0
        while True:
            try:
                await self._handler(records)
            except Exception:
                attempt += 1
                logger.exception(
                    "log follower handler failed; the batch will be handed over again",
                    extra={"topic": self.topic, "attempt": attempt, "records": len(records)},
                )
                if not await self._pause(attempt):
                    return  # stopping: these records were not handled and stay unread
                continue
            break
        for record in records:
            self._positions[record.partition] = record.offset + 1
        async with self._progress:
            self._progress.notify_all()

    async def _pause(self, attempt: int) -> bool:
        """Back off before retry ``attempt``; False when the follower is stopping meanwhile."""
        base, cap = self._retry
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(cap, base * 2 ** min(attempt - 1, 16))):
                await self._stopping.wait()
        return not self._stopping.is_set()

    async def _fail(self, error: BaseException) -> None:
        logger.error("log follower stopped: %s", error, extra={"topic": self.topic})
        self.error = error
        async with self._progress:
            self._progress.notify_all()


def _number(tp: TopicPartition) -> int:
    return int(tp.partition)


def _outside(
    error: _KafkaOffsetOutOfRange, positions: Mapping[int, int]
) -> dict[int, tuple[int, int, int]]:
    # aiokafka's error carries {TopicPartition: offset}; bounds are unknown here (-1).
    raw = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    found = {int(tp.partition): (int(offset), -1, -1) for tp, offset in raw.items()}
    return found or {p: (o, -1, -1) for p, o in positions.items()}
