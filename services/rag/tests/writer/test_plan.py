"""The pure parts of the write path: the upsert plan and the splitting of index events."""

from __future__ import annotations

import pytest

from x0_common.events.rag import Document, Indexed, IndexedChunk
from x0_rag.adapters.index_events import split
from x0_rag.domain.ingest import last_wins, plan_upsert

pytestmark = pytest.mark.unit


def _chunk(chunk_id: int, metadata_size: int = 0) -> IndexedChunk:
    return IndexedChunk(
        chunk_id=chunk_id,
        document_id=f"doc-{chunk_id // 10}",
        vector=[0.123456789] * 384,
        metadata={"pad": "x" * metadata_size} if metadata_size else {},
    )


def test_last_occurrence_of_an_id_wins_at_its_position() -> None:
    documents = [
        Document(id="a", text="a1"),
        Document(id="b", text="b1"),
        Document(id="a", text="a2"),
        Document(id="c", text="c1"),
    ]
    assert [(d.id, d.text) for d in last_wins(documents)] == [("b", "b1"), ("a", "a2"), ("c", "c1")]


def test_the_plan_lists_chunk_texts_in_document_order() -> None:
    plan = plan_upsert(
        [Document(id="a", text="First. " * 40), Document(id="b", text="Second.")],
        size=64,
        overlap=8,
    )
    assert [d.id for d in plan.documents] == ["a", "b"]
    assert plan.texts == [c.text for d in plan.documents for c in d.chunks]
    assert plan.texts[-1] == "Second."
    assert plan.documents[0].metadata_json == "{}"


def test_a_small_event_travels_whole() -> None:
    event = Indexed(source="0:1", collection="c", upserted=[_chunk(1)], removed=[5, 6])
    assert split(event, 64 * 1024) == [event]


def test_a_large_event_is_split_into_parts_that_fit_and_keep_everything() -> None:
    event = Indexed(
        source="3:99",
        collection="c",
        upserted=[_chunk(i, metadata_size=i * 50) for i in range(100, 160)],
        removed=list(range(10_000, 13_000)),
    )
    limit = 32 * 1024
    parts = split(event, limit)

    assert len(parts) > 3
    assert all(len(part.model_dump_json()) <= limit for part in parts)
    assert [part.final for part in parts] == [False] * (len(parts) - 1) + [True]
    assert {(part.source, part.collection) for part in parts} == {("3:99", "c")}
    assert [i for part in parts for i in part.removed] == event.removed
    assert [c for part in parts for c in part.upserted] == event.upserted


def test_a_chunk_larger_than_the_limit_travels_alone() -> None:
    event = Indexed(source="0:1", collection="c", upserted=[_chunk(1), _chunk(2, 9_000), _chunk(3)])
    parts = split(event, 8 * 1024)
    assert [[c.chunk_id for c in part.upserted] for part in parts] == [[1], [2], [3]]
