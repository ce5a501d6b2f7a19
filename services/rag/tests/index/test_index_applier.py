"""The rules for applying index events, without Kafka: idempotent, ordered, never stale."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from x0_common.events.rag import Indexed, IndexedChunk, IndexParams
from x0_rag.adapters.index.applier import IndexRecord, apply_batch, decode, new_collections
from x0_rag.adapters.index.collection import CollectionIndex
from x0_rag.domain.filters import MetadataFilter

from .vectors import DIM, unit_vectors

pytestmark = pytest.mark.unit


VECTORS = unit_vectors(40, seed=7)
EVERYTHING = MetadataFilter()


def chunk(chunk_id: int, **metadata: object) -> IndexedChunk:
    return IndexedChunk(
        chunk_id=chunk_id,
        document_id=f"doc-{chunk_id}",
        vector=VECTORS[chunk_id].tolist(),
        metadata=metadata,
    )


@dataclass
class FakeRecord:
    """What aiokafka hands over: only these fields are read."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


def partition_of(event: Indexed) -> int:
    return int(event.source.split(":")[0])


def records(*events: Indexed, first_offset: int = 0) -> list[IndexRecord]:
    """The events as records of index partitions named by their sources' partitions."""
    raw = [
        FakeRecord("index", partition_of(e), first_offset + n, e.model_dump_json().encode())
        for n, e in enumerate(events)
    ]
    return decode(raw)


def state(collections: dict[str, CollectionIndex]) -> dict[str, object]:
    """Everything observable: live ids, metadata, versions, and nearest neighbours."""
    return {
        name: (
            sorted(c.metadata),
            c.metadata,
            c.versions,
            [c.search(VECTORS[i], 5, ef=None, where=EVERYTHING) for i in range(0, 40, 7)],
        )
        for name, c in sorted(collections.items())
    }


HISTORY = [
    Indexed(source="0:0", collection="a", upserted=[chunk(1), chunk(2), chunk(3)]),
    Indexed(source="0:1", collection="b", upserted=[chunk(10, lang="en")]),
    Indexed(source="0:2", collection="a", upserted=[chunk(4)], removed=[1, 2]),
    Indexed(source="0:3", collection="a", error="document too large"),
    Indexed(source="0:4", collection="b", upserted=[chunk(11, lang="de")]),
    Indexed(source="0:5", collection="a", upserted=[chunk(5)], removed=[3]),
]


def test_applying_the_same_batch_twice_gives_the_same_index() -> None:
    once: dict[str, CollectionIndex] = {}
    outcome = apply_batch(records(*HISTORY), once, {}, {})
    assert outcome.advanced == [(0, n) for n in range(6)]
    assert outcome.positions == {0: 6}
    assert sorted(once["a"].metadata) == [4, 5]
    assert once["a"].versions == {0: 5}

    twice: dict[str, CollectionIndex] = {}
    apply_batch(records(*HISTORY), twice, {}, {})
    # The second pass starts from nothing applied: only the per-collection versions
    # keep the replayed events from changing anything.
    again = apply_batch(records(*HISTORY), twice, {}, {})
    assert state(twice) == state(once)
    assert again.touched == {"a", "b"}


def test_a_stale_event_never_brings_back_a_removed_chunk() -> None:
    collections: dict[str, CollectionIndex] = {}
    apply_batch(records(*HISTORY), collections, {}, {})
    # The writer re-publishes the first event after the later ones.
    outcome = apply_batch(records(HISTORY[0], first_offset=6), collections, {0: 5}, {})
    assert outcome.advanced == []
    assert 1 not in collections["a"].index
    assert sorted(collections["a"].metadata) == [4, 5]


def test_events_of_one_ingest_in_parts_move_the_version_with_the_last() -> None:
    collections: dict[str, CollectionIndex] = {}
    part_one = Indexed(source="1:7", collection="c", upserted=[chunk(20)], final=False)
    part_two = Indexed(source="1:7", collection="c", upserted=[chunk(21)], final=True)
    first = apply_batch(records(part_one), collections, {}, {})
    assert first.advanced == []
    assert collections["c"].versions == {}
    second = apply_batch(records(part_two, first_offset=1), collections, {}, {})
    assert second.advanced == [(1, 7)]
    assert sorted(collections["c"].metadata) == [20, 21]
    assert collections["c"].versions == {1: 7}
    # Replaying both parts changes nothing.
    again = apply_batch(records(part_one, part_two), collections, {1: 7}, {})
    assert again.advanced == []


def test_a_deleted_collection_is_dropped_and_may_come_back() -> None:
    collections: dict[str, CollectionIndex] = {}
    outcome = apply_batch(
        records(
            HISTORY[0],
            Indexed(source="0:1", collection="a", collection_deleted=True),
            Indexed(source="0:2", collection="a", upserted=[chunk(30)]),
        ),
        collections,
        {},
        {"a": IndexParams(m=8, ef_construction=50, ef=20)},
    )
    assert outcome.dropped == {"a"}
    assert sorted(collections["a"].metadata) == [30]
    assert collections["a"].params == IndexParams(m=8, ef_construction=50, ef=20)
    assert collections["a"].index.ef == 20


def test_records_that_are_not_events_are_skipped_and_counted_as_read() -> None:
    good = Indexed(source="0:0", collection="a", upserted=[chunk(1)])
    decoded = decode(
        [
            FakeRecord("index", 0, 0, b"not json"),
            FakeRecord("index", 0, 1, good.model_dump_json().encode()),
            FakeRecord("index", 0, 2, None),
        ]
    )
    assert [r.event is None for r in decoded] == [True, False, True]
    collections: dict[str, CollectionIndex] = {}
    outcome = apply_batch(decoded, collections, {}, {})
    assert outcome.positions == {0: 3}
    assert sorted(collections["a"].metadata) == [1]


def test_an_event_with_a_bad_vector_is_skipped_not_fatal() -> None:
    bad = Indexed(
        source="0:0",
        collection="a",
        upserted=[IndexedChunk(chunk_id=1, document_id="d", vector=[0.0] * DIM)],
    )
    good = Indexed(source="0:1", collection="a", upserted=[chunk(2)])
    collections: dict[str, CollectionIndex] = {}
    outcome = apply_batch(records(bad, good), collections, {}, {})
    assert outcome.advanced == [(0, 0), (0, 1)]
    assert sorted(collections["a"].metadata) == [2]


def test_new_collections_are_those_written_without_an_index_yet() -> None:
    collections = {"a": CollectionIndex.empty("a", IndexParams())}
    batch = records(
        Indexed(source="0:0", collection="a", upserted=[chunk(1)]),
        Indexed(source="0:1", collection="b", upserted=[chunk(2)]),
        Indexed(source="0:2", collection="c", error="refused"),
        Indexed(source="0:3", collection="d", collection_deleted=True),
    )
    assert new_collections(batch, collections) == {"b"}


def test_two_tenants_collections_of_one_name_are_two_indexes() -> None:
    collections: dict[str, CollectionIndex] = {}
    batch = records(
        Indexed(source="0:0", collection="docs", upserted=[chunk(1)]),
        Indexed(source="0:1", collection="docs", tenant="acme", upserted=[chunk(2)]),
        Indexed(source="0:2", collection="docs", tenant="acme", collection_deleted=True),
    )
    assert new_collections(batch, collections) == {"docs", "acme/docs"}
    outcome = apply_batch(batch, collections, {}, {})
    # acme's drop takes acme's index only; the default tenant's keeps its chunk.
    assert outcome.dropped == {"acme/docs"}
    assert sorted(collections) == ["docs"]
    assert sorted(collections["docs"].metadata) == [1]
