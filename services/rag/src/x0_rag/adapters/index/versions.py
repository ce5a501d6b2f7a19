"""Version tokens, and which ingest versions this replica's index has applied.

A version token ``"<p>:<o>"`` names the message at offset ``o`` of partition ``p``
of ``x0.rag.ingest`` (``IngestAccepted.version``). The writer handles each ingest
partition in offset order and publishes one ``Indexed`` event per ingest message
(an ``error`` one when it refused the message) to the index topic's partition
``p``, so on index partition ``p`` the sources only grow. Once the replica has
applied the event from ``p:o``, it has applied every ingest message of partition
``p`` up to ``o``: ``applied[p] >= o`` is the whole test for "``p:o`` is visible".

Waiting is bounded. A wait that runs out raises :class:`VersionNotApplied`
(``deadline_exceeded``, HTTP 504): the replica is behind, the request was fine and
may be sent again; it is not ``unavailable`` because the responder would retry that
at once, and each retry would wait the whole bound again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Mapping

from x0_rag.errors import InvalidInput, VersionNotApplied


def parse_token(token: str) -> tuple[int, int]:
    """``"3:120"`` -> ``(3, 120)``; ``InvalidInput`` for anything else."""
    partition, sep, offset = token.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise InvalidInput("a version is '<partition>:<offset>'", details={"version": token})
    return int(partition), int(offset)


def format_token(partition: int, offset: int) -> str:
    """``(3, 120)`` -> ``"3:120"``."""
    return f"{partition}:{offset}"


class AppliedVersions:
    """Per ingest partition, the highest source offset applied; waiters wake as it grows.

    Used from the event loop only (the applier advances it after each batch).
    """

    def __init__(self, initial: Mapping[int, int] | None = None) -> None:
        self._applied: dict[int, int] = dict(initial or {})
        # Per partition, a heap of (offset, tie-breaker, future) still waiting.
        self._waiters: dict[int, list[tuple[int, int, asyncio.Future[None]]]] = {}
        self._order = itertools.count()

    def get(self, partition: int) -> int:
        """The highest source offset applied from ``partition`` (-1: none)."""
        return self._applied.get(partition, -1)

    def as_dict(self) -> dict[int, int]:
        """A copy, for snapshots and diagnostics."""
        return dict(self._applied)

    def covers(self, partition: int, offset: int) -> bool:
        """Whether ingest message ``partition:offset`` has been applied."""
        return self.get(partition) >= offset

    def advance(self, partition: int, offset: int) -> None:
        """Record that ``partition:offset`` is applied; wake the waiters it satisfies."""
        if offset <= self.get(partition):
            return
        self._applied[partition] = offset
        heap = self._waiters.get(partition)
        while heap and heap[0][0] <= offset:
            _, _, future = heapq.heappop(heap)
            if not future.done():
                future.set_result(None)

    async def wait_for(self, token: str, timeout: float) -> None:
        """Return once ``token`` is applied; ``VersionNotApplied`` after ``timeout`` seconds."""
        partition, offset = parse_token(token)
        if self.covers(partition, offset):
            return
        started = time.monotonic()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters.setdefault(partition, []), (offset, next(self._order), future))
        try:
            async with asyncio.timeout(max(timeout, 0)):
                await future
        except TimeoutError:
            waited = round((time.monotonic() - started) * 1000)
            raise VersionNotApplied(token, self.get(partition), waited) from None
        finally:
            if not future.done():
                future.cancel()  # a cancelled entry is dropped when the heap reaches it
            self._prune(partition)

    def _prune(self, partition: int) -> None:
        heap = self._waiters.get(partition)
        if heap and len(heap) > 64 and sum(f.done() for *_, f in heap) > len(heap) // 2:
            live = [entry for entry in heap if not entry[2].done()]
            heapq.heapify(live)
            self._waiters[partition] = live
