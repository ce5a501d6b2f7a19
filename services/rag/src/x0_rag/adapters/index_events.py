"""Publishing what the writer stored: ``Indexed`` events on ``x0.rag.index``, and the
collection-dropped marker on ``x0.rag.ingest``.

Index events:

- go to the index topic's partition with the number of the ingest partition their
  source came from (keyed by collection, for tools), so that on index partition
  ``p`` the sources of ingest partition ``p`` follow the writer's commit order;
- are split to fit a Kafka message (~1 MB by default; a chunk's vector is ~8 kB of
  JSON): parts of at most :data:`MAX_EVENT_BYTES` share ``source``, the removals
  come first, and only the last part has ``final``;
- are acknowledged (``acks=all``) before :meth:`IndexEvents.publish` returns. A
  failed publish is retried, all parts again in order, until the broker takes
  them: the rows are committed already, and the ingest offset must not move past
  a message whose event is not durable. Replicas apply duplicates idempotently.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Final

from faststream.kafka import KafkaBroker

from x0_common.contract import Rag
from x0_common.events.envelope import Headers
from x0_common.events.rag import (
    INDEX_TOPIC,
    CollectionNameRequest,
    Indexed,
    IndexedChunk,
)
from x0_common.principal import Principal, qualified
from x0_rag.errors import Unavailable

logger = logging.getLogger(__name__)

# Half the broker's default limit (message.max.bytes, 1 MiB): room for headers,
# batch overhead and one chunk whose metadata is at its limit.
MAX_EVENT_BYTES: Final = 512 * 1024
_MAX_BACKOFF: Final = 5.0


def split(event: Indexed, max_bytes: int = MAX_EVENT_BYTES) -> list[Indexed]:
    """``event`` as parts of at most ``max_bytes`` of JSON each (a single chunk larger
    than that travels alone); the last part has ``final``, the others not."""
    if len(event.model_dump_json()) <= max_bytes:
        return [event]
    empty = Indexed(source=event.source, collection=event.collection, final=False)
    room = max_bytes - len(empty.model_dump_json())
    parts: list[Indexed] = []
    removed: list[int] = []
    upserted: list[IndexedChunk] = []
    used = 0

    def flush() -> None:
        nonlocal removed, upserted, used
        parts.append(empty.model_copy(update={"removed": removed, "upserted": upserted}))
        removed, upserted, used = [], [], 0

    for chunk_id in event.removed:
        cost = len(str(chunk_id)) + 1
        if used + cost > room and (removed or upserted):
            flush()
        removed.append(chunk_id)
        used += cost
    for chunk in event.upserted:
        cost = len(chunk.model_dump_json()) + 1
        if used + cost > room and (removed or upserted):
            flush()
        upserted.append(chunk)
        used += cost
    if removed or upserted:
        flush()
    parts[-1] = parts[-1].model_copy(update={"final": True})
    return parts


class IndexEvents:
    """Publishes ``Indexed`` events through the worker's broker."""

    def __init__(
        self, broker: KafkaBroker, topic: str = INDEX_TOPIC, *, max_bytes: int = MAX_EVENT_BYTES
    ) -> None:
        self._broker = broker
        self.topic = topic
        self._max_bytes = max_bytes

    async def publish(self, event: Indexed, partition: int) -> int:
        """Publish ``event`` to index partition ``partition``; return once every part is
        acknowledged (retrying until then); the number of parts."""
        bodies = [part.model_dump_json().encode() for part in split(event, self._max_bytes)]
        headers = {Headers.TYPE: Rag.INDEXED.message_type, "content-type": "application/json"}
        await publish_in_order(
            self._broker,
            self.topic,
            bodies,
            key=qualified(event.tenant, event.collection),
            partition=partition,
            headers=headers,
        )
        return len(bodies)


async def announce_drop(
    broker: KafkaBroker,
    ingest_topic: str,
    collection: str,
    *,
    principal: Principal,
    give_up_at: float | None,
) -> None:
    """Put the collection-dropped marker in the collection's place on the ingest topic
    (keyed like its ingests, by name), on behalf of ``principal`` (whose tenant the
    collection is); ``Unavailable`` if not acknowledged by ``give_up_at``."""
    body = CollectionNameRequest(name=collection).model_dump_json().encode()
    headers = {
        Headers.TYPE: Rag.COLLECTION_DROPPED.message_type,
        Headers.PRINCIPAL: principal.header(),
        "content-type": "application/json",
    }
    await publish_in_order(
        broker, ingest_topic, [body], key=collection, headers=headers, give_up_at=give_up_at
    )


async def publish_in_order(
    broker: KafkaBroker,
    topic: str,
    bodies: list[bytes],
    *,
    key: str,
    headers: dict[str, str],
    partition: int | None = None,
    give_up_at: float | None = None,
) -> None:
    """Publish ``bodies`` in order and await every acknowledgement; on any failure,
    publish all of them again after a backoff. ``give_up_at`` (unix time) bounds the
    retries with ``Unavailable``; ``None`` retries until cancelled."""
    attempt = 0
    while True:
        pending: list[asyncio.Future[object]] = []
        try:
            # Handed to the producer one after the other: the idempotent producer keeps
            # their order on the partition while they share produce requests.
            for body in bodies:
                delivery = await broker.publish(
                    body,
                    topic,
                    key=key.encode(),
                    partition=partition,
                    headers=headers,
                    no_confirm=True,
                )
                pending.append(delivery)
            outcomes = await asyncio.gather(*pending, return_exceptions=True)
            failure = next((o for o in outcomes if isinstance(o, BaseException)), None)
            if failure is None:
                return
            raise failure
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - every publish failure is retried
            # Futures already handed out must be awaited, or asyncio reports them lost.
            await asyncio.gather(*pending, return_exceptions=True)
            attempt += 1
            delay = random.uniform(0, min(_MAX_BACKOFF, 0.05 * 2 ** min(attempt, 10)))  # noqa: S311
            if give_up_at is not None and time.time() + delay >= give_up_at:
                raise Unavailable(
                    "the broker did not acknowledge the event", details={"topic": topic}
                ) from None
            logger.warning(
                "index event publish failed, retrying",
                extra={"topic": topic, "error": type(error).__name__, "attempt": attempt},
            )
            await asyncio.sleep(delay)
