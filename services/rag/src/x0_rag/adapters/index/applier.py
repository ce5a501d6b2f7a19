"""Apply a batch of index-topic records to the replica's collections (in a worker thread).

Rules, per record, in order:

- a record that is not an ``Indexed`` event is logged and skipped (it can never
  become valid, and stopping would stall the replica for good);
- an event whose source is at or below what the replica applied from that ingest
  partition is a duplicate (a writer's re-publish) and is skipped; the version
  moves with an ingest's ``final`` event (a large ingest comes in several parts
  sharing one source);
- ``error``: nothing changes, only the version advances;
- ``collection_deleted``: the collection's index is dropped;
- otherwise removals then upserts, into the collection's index, which is created
  on its first event (parameters from PostgreSQL, read beforehand by the caller);
  an event the collection already applied (``CollectionIndex.seen``) is skipped.
  Upserted chunks get their words from the texts the caller read from PostgreSQL
  (events carry vectors, not text);
- last, every touched collection's lexical index is rebuilt if it changed, so a
  version counts as applied only once keyword search sees it too.

Collections are keyed by their tenant and name (``qualified(tenant, name)``: the bare
name for the default tenant, ``tenant/name`` otherwise), so two tenants' collections
of one name are two indexes.

Upserts replace and deletes of unknown ids are no-ops, so applying a batch twice
leaves the same index as applying it once.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from x0_common.events.rag import Indexed, IndexParams
from x0_common.principal import qualified
from x0_rag.adapters.index.collection import CollectionIndex
from x0_rag.adapters.index.versions import parse_token
from x0_rag.errors import RagError

logger = logging.getLogger(__name__)
# (ingest partition, index partition) pairs already warned about: once is enough.
_warned: set[tuple[int, int]] = set()


@dataclass(frozen=True, slots=True)
class IndexRecord:
    """One record of the index topic, decoded (``event`` is None when it did not decode)."""

    partition: int
    offset: int
    event: Indexed | None


@dataclass
class BatchOutcome:
    """What a batch changed: the versions to advance and the collections touched or dropped."""

    advanced: list[tuple[int, int]] = field(default_factory=list)
    touched: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)
    # Per index partition, the next offset to read once this batch counts as applied.
    positions: dict[int, int] = field(default_factory=dict)


def decode(records: list[Any]) -> list[IndexRecord]:
    """Parse the records' values as ``Indexed`` (CPU work: call it in a thread)."""
    decoded = []
    for record in records:
        try:
            event = Indexed.model_validate_json(record.value or b"")
        except ValidationError as error:
            event = None
            logger.error(
                "skipping an index record that is not an Indexed event",
                extra={
                    "origin": f"{record.topic}/{record.partition}/{record.offset}",
                    "errors": error.error_count(),
                },
            )
        decoded.append(IndexRecord(record.partition, record.offset, event))
    return decoded


def key_of(event: Indexed) -> str:
    """The index key of the event's collection."""
    return qualified(event.tenant, event.collection)


def upserted_ids(records: list[IndexRecord]) -> list[int]:
    """Chunk ids the batch's events upsert (their texts are read before applying)."""
    return [
        chunk.chunk_id
        for r in records
        if r.event is not None and r.event.error is None and not r.event.collection_deleted
        for chunk in r.event.upserted
    ]


def new_collections(
    records: list[IndexRecord], collections: Mapping[str, CollectionIndex]
) -> set[str]:
    """Keys of the collections the batch writes to that have no index here yet."""
    return {
        key_of(r.event)
        for r in records
        if r.event is not None
        and r.event.error is None
        and not r.event.collection_deleted
        and key_of(r.event) not in collections
    }


def apply_batch(
    records: list[IndexRecord],
    collections: dict[str, CollectionIndex],
    applied: Mapping[int, int],
    params: Mapping[str, IndexParams],
    texts: Mapping[int, str] | None = None,
) -> BatchOutcome:
    """Apply ``records`` to ``collections`` (changed in place); see the module's rules.

    ``applied`` is the replica's applied version per ingest partition before the
    batch; ``params`` holds the parameters (by key) of collections created by this batch
    (a collection PostgreSQL no longer has gets the defaults: its deletion event
    follows in the log and drops it again); ``texts`` the upserted chunks' texts by id.
    """
    outcome = BatchOutcome()
    seen = dict(applied)
    for record in records:
        outcome.positions[record.partition] = record.offset + 1
        event = record.event
        if event is None:
            continue
        partition, offset = parse_token(event.source)
        if offset <= seen.get(partition, -1):
            continue
        if partition != record.partition and (partition, record.partition) not in _warned:
            _warned.add((partition, record.partition))
            logger.warning(
                "index event from ingest partition %d on index partition %d: "
                "read-your-writes waits may return early",
                partition,
                record.partition,
            )
        if event.final:
            seen[partition] = offset
            outcome.advanced.append((partition, offset))
        name = key_of(event)
        if event.error is not None:
            continue
        if event.collection_deleted:
            if collections.pop(name, None) is not None:
                logger.info("collection index dropped", extra={"collection": name})
            outcome.dropped.add(name)
            outcome.touched.discard(name)
            continue
        collection = collections.get(name)
        if collection is None:
            collection = CollectionIndex.empty(name, params.get(name, IndexParams()))
            collections[name] = collection
        try:
            collection.apply(
                partition,
                offset,
                upserted=event.upserted,
                removed=event.removed,
                final=event.final,
                texts=texts,
            )
        except RagError as error:
            # A malformed vector: it will never apply; skipping keeps the replica going.
            logger.error(
                "skipping an index event that cannot be applied",
                extra={"collection": name, "source": event.source, "reason": error.message},
            )
        outcome.touched.add(name)
    for name in outcome.touched:
        collections[name].lexical.refresh()
    return outcome
