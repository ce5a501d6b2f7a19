"""IndexManager on the real Kafka, PostgreSQL and model: apply, wait, snapshot, recover."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from x0_common import errors as common
from x0_common.metrics import new_registry
from x0_common.settings import KafkaSettings
from x0_common.testing import wait_until
from x0_rag.adapters.embedder import Embedder
from x0_rag.adapters.index import IndexManager, VersionNotApplied, recovery
from x0_rag.errors import InvalidInput
from x0_rag.metrics import SERVICE, RagMetrics
from x0_rag.settings import RagSettings

from .conftest import StartManager, unique
from .support import RagWriter

pytestmark = pytest.mark.integration

QUERIES = [
    "how are streams of records stored",
    "ranking full text matches",
    "what do young cats eat",
]


async def fill(writer: RagWriter, name: str, *, partition: int = 0) -> str:
    """Four documents, one replaced and one deleted; returns the last version token."""
    await writer.upsert(
        name,
        "kafka",
        ["Kafka keeps streams of records in partitioned logs."],
        {"team": "infra"},
        partition=partition,
    )
    await writer.upsert(
        name,
        "pg",
        ["PostgreSQL ranks full-text matches.", "It uses ts_rank_cd over tsvector columns."],
        {"team": "data"},
        partition=partition,
    )
    await writer.upsert(
        name,
        "cats",
        ["Young cats need a diet rich in meat."],
        {"team": "pets"},
        partition=partition,
    )
    await writer.upsert(
        name, "tmp", ["A document that is deleted again."], {"team": "ops"}, partition=partition
    )
    await writer.upsert(
        name,
        "pg",
        ["PostgreSQL ranks full-text matches with ts_rank_cd."],
        {"team": "data"},
        partition=partition,
    )
    return (await writer.delete_document(name, "tmp", partition=partition)).source


async def answers(
    manager: IndexManager, embedder: Embedder, name: str, k: int = 3
) -> list[list[int]]:
    """The manager's vector, then keyword, answers to QUERIES, as chunk ids."""
    vectors = embedder.embed(QUERIES)
    by_vector = [[i for i, _ in await manager.search(name, vector, k)] for vector in vectors]
    by_keyword = [[i for i, _ in await manager.keyword(name, query, k)] for query in QUERIES]
    return by_vector + by_keyword


async def test_applies_events_and_answers_version_waits(
    writer: RagWriter, start_manager: StartManager, embedder: Embedder
) -> None:
    name = await writer.new_collection()
    manager = await start_manager()
    assert manager.ready
    last = await fill(writer, name)
    await manager.wait_for(last, timeout=20)
    collection = manager.collection(name)
    assert collection is not None
    # The replaced and the deleted document's chunks are gone.
    assert set(collection.metadata) == await writer.chunk_ids(name)
    assert collection.lexical.ids() == set(collection.metadata)
    assert len(collection) == 3
    best = await answers(manager, embedder, name, k=1)
    rows = await writer.pool.fetch(
        "SELECT chunk_id, document_id FROM rag.chunks WHERE collection = $1", name
    )
    documents = {row["chunk_id"]: row["document_id"] for row in rows}
    assert [documents[ids[0]] for ids in best] == ["kafka", "pg", "cats"] * 2
    # An already-applied version answers at once; the replica's applied map shows it.
    await manager.wait_for("0:0", timeout=0)
    assert manager.applied()[0] == int(last.split(":")[1])


async def test_a_version_not_applied_in_time_is_a_504_and_a_bad_partition_a_400(
    writer: RagWriter, start_manager: StartManager
) -> None:
    manager = await start_manager()
    with pytest.raises(VersionNotApplied) as late:
        await manager.wait_for("1:99", timeout=0.2)
    assert isinstance(late.value, common.DeadlineExceeded)
    assert (late.value.code, late.value.http_status) == ("deadline_exceeded", 504)
    assert late.value.details["version"] == "1:99"
    assert late.value.details["waited_ms"] >= 200
    with pytest.raises(InvalidInput):
        await manager.wait_for("7:0", timeout=1)


async def test_a_wait_returns_as_soon_as_its_version_is_applied(
    writer: RagWriter, start_manager: StartManager
) -> None:
    name = await writer.new_collection()
    manager = await start_manager()
    event = await writer.upsert(name, "a", ["First text."], publish=False)
    waiting = asyncio.create_task(manager.wait_for(event.source, timeout=20))
    await asyncio.sleep(0.3)
    assert not waiting.done()
    await writer.publish(event)
    await asyncio.wait_for(waiting, timeout=20)
    assert manager.collection(name) is not None


async def test_refused_ingests_advance_the_version_and_change_nothing(
    writer: RagWriter, start_manager: StartManager
) -> None:
    name = unique("t")
    manager = await start_manager()
    event = await writer.refuse(name, partition=1)
    await manager.wait_for(event.source, timeout=20)
    assert manager.collection(name) is None


async def test_replayed_and_stale_events_change_nothing(
    writer: RagWriter, start_manager: StartManager, embedder: Embedder
) -> None:
    name = await writer.new_collection()
    manager = await start_manager()
    first = await writer.upsert(name, "a", ["Kafka keeps records in logs."])
    second = await writer.upsert(name, "a", ["Replaced: PostgreSQL keeps rows in tables."])
    await writer.upsert(name, "b", ["Cats eat meat."])
    last = await writer.upsert(name, "c", ["Graphs answer neighbour queries."])
    await manager.wait_for(last.source, timeout=20)
    before = await answers(manager, embedder, name)
    # The writer re-publishes (a crash before its offset commit): same sources again,
    # the oldest last, which would bring back the replaced chunk if applied.
    for event in (second, last, first):
        await writer.publish(event)
    marker = await writer.refuse(name)
    await manager.wait_for(marker.source, timeout=20)
    collection = manager.collection(name)
    assert collection is not None
    assert set(collection.metadata) == await writer.chunk_ids(name)
    assert first.upserted[0].chunk_id not in collection.index
    assert await answers(manager, embedder, name) == before


async def test_snapshot_restart_resumes_with_identical_answers_and_no_missed_events(
    writer: RagWriter, start_manager: StartManager, embedder: Embedder, tmp_path: Path
) -> None:
    root = tmp_path / "replica"
    first, second = unique("t"), unique("t")
    for name in (first, second):
        await writer.create_collection(name)
    manager = await start_manager(root)
    await fill(writer, first, partition=0)
    last = await fill(writer, second, partition=1)
    await manager.wait_for(last, timeout=20)
    assert {first, second} <= set(await manager.snapshot())
    expected = {name: await answers(manager, embedder, name) for name in (first, second)}
    await manager.stop()  # as if it crashed right after the snapshot

    restarted = await start_manager(root)
    assert not {first, second} & set(restarted.rebuilt)
    for name in (first, second):
        assert await answers(restarted, embedder, name) == expected[name]
    # Only the second collection changes before the next snapshot: it is written in
    # full, the first one's snapshot only records newer offsets.
    changed = await writer.upsert(second, "new", ["Brokers replicate partitions."], partition=1)
    await restarted.wait_for(changed.source, timeout=20)
    written = await restarted.snapshot()
    assert second in written
    assert first not in written
    # Then the first changes, and the replica stops without a snapshot; more changes
    # arrive while it is down.
    await writer.delete_document(first, "cats", partition=0)
    late = await writer.upsert(first, "dogs", ["Dogs need walks every day."], partition=0)
    await restarted.wait_for(late.source, timeout=20)
    await restarted.stop()
    down = await writer.upsert(second, "down", ["Written while the replica is down."], partition=1)

    again = await start_manager(root)
    assert not {first, second} & set(again.rebuilt)
    await again.wait_for(late.source, timeout=0)
    await again.wait_for(down.source, timeout=0)
    for name in (first, second):
        collection = again.collection(name)
        assert collection is not None
        assert set(collection.metadata) == await writer.chunk_ids(name)
    # The same answers as an index rebuilt from PostgreSQL alone.
    rebuilt = await start_manager(tmp_path / "fresh")
    assert {first, second} <= set(rebuilt.rebuilt)
    for name in (first, second):
        assert await answers(again, embedder, name) == await answers(rebuilt, embedder, name)


async def snapshotted_and_stopped(
    writer: RagWriter, start_manager: StartManager, embedder: Embedder, root: Path
) -> tuple[str, list[list[int]]]:
    """A filled collection whose replica in ``root`` snapshotted it and stopped: its
    name, and the answers that replica gave."""
    name = await writer.new_collection()
    manager = await start_manager(root)
    last = await fill(writer, name)
    await manager.wait_for(last, timeout=20)
    await manager.snapshot()
    expected = await answers(manager, embedder, name)
    await manager.stop()
    return name, expected


@pytest.mark.parametrize("damage", ["index", "metadata", "current", "state"])
async def test_a_corrupt_snapshot_is_rebuilt_from_postgres(
    writer: RagWriter,
    start_manager: StartManager,
    embedder: Embedder,
    tmp_path: Path,
    damage: str,
) -> None:
    root = tmp_path / "replica"
    name, expected = await snapshotted_and_stopped(writer, start_manager, embedder, root)

    folder = root / name
    generation = folder / (folder / "CURRENT").read_text()
    if damage == "index":
        target = next(generation.glob("index-*.bin"))
        raw = bytearray(target.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        target.write_bytes(bytes(raw))
    elif damage == "metadata":
        (generation / "metadata.json").write_text("{}")
    elif damage == "current":
        (folder / "CURRENT").write_text("gen-999999999999")
    else:
        (generation / "state.json").write_text('{"format": 1}')

    restarted = await start_manager(root)
    assert name in restarted.rebuilt
    assert await answers(restarted, embedder, name) == expected
    # Events after the rebuild still apply.
    event = await writer.upsert(name, "later", ["Something written after the rebuild."])
    await restarted.wait_for(event.source, timeout=20)
    collection = restarted.collection(name)
    assert collection is not None
    assert set(collection.metadata) == await writer.chunk_ids(name)


async def test_a_snapshot_of_another_log_is_not_trusted(
    writer: RagWriter,
    start_manager: StartManager,
    embedder: Embedder,
    tmp_path: Path,
) -> None:
    # The index topic was recreated (or retention passed the snapshot): its resume
    # offsets lie outside the log, so the collection is rebuilt from PostgreSQL.
    root = tmp_path / "replica"
    name, expected = await snapshotted_and_stopped(writer, start_manager, embedder, root)
    writer.index_topic = f"{writer.index_topic}.recreated"
    restarted = await start_manager(root)
    assert name in restarted.rebuilt
    assert await answers(restarted, embedder, name) == expected


async def test_a_deleted_collection_loses_its_index_and_snapshots(
    writer: RagWriter, start_manager: StartManager, tmp_path: Path
) -> None:
    root = tmp_path / "replica"
    name = await writer.new_collection()
    manager = await start_manager(root)
    await writer.upsert(name, "a", ["Some text."])
    event = await writer.upsert(name, "b", ["Other text."])
    await manager.wait_for(event.source, timeout=20)
    await manager.snapshot()
    assert (root / name / "CURRENT").exists()
    dropped = await writer.drop_collection(name)
    await manager.wait_for(dropped.source, timeout=20)
    assert manager.collection(name) is None
    assert not (root / name).exists()
    assert await manager.search(name, [1.0] * 384, 3) == []
    assert await manager.keyword(name, "text", 3) == []


async def test_metrics_show_sizes_lag_and_snapshot_age(
    writer: RagWriter, start_manager: StartManager
) -> None:
    registry = new_registry()
    name = await writer.new_collection()
    manager = await start_manager(metrics=RagMetrics(registry))
    event = await writer.upsert(name, "a", ["One chunk.", "Two chunks."])
    await manager.wait_for(event.source, timeout=20)
    await manager.snapshot()
    await manager.refresh_metrics()

    def sample(metric: str, **labels: str) -> float | None:
        return registry.get_sample_value(metric, {"service": SERVICE, **labels})

    assert sample("x0_rag_index_size", collection=name) == 2
    assert sample("x0_rag_replication_lag") == 0
    age = sample("x0_rag_snapshot_age_seconds", collection=name)
    assert age is not None
    assert 0 <= age < 30
    dropped = await writer.drop_collection(name)
    await manager.wait_for(dropped.source, timeout=20)
    assert sample("x0_rag_index_size", collection=name) is None


async def test_writes_during_a_rebuild_are_neither_missed_nor_doubled(
    writer: RagWriter,
    start_manager: StartManager,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The replica records the log's end before it reads PostgreSQL. A write that lands
    # between the two is in the rows it reads *and* in the log after that end; a write
    # right after the read is only in the log. Both must end up applied exactly once.
    name = await writer.new_collection()
    await writer.upsert(name, "before", ["Written before the replica starts."])
    real_read = recovery.read_postgres

    async def read_with_writes_around(*args: Any, **kwargs: Any) -> Any:
        await writer.upsert(name, "between", ["Written after the end offsets were taken."])
        state = await real_read(*args, **kwargs)
        await writer.upsert(name, "after", ["Written after the rows were read."])
        await writer.upsert(name, "between", ["Replaced after the rows were read."])
        return state

    monkeypatch.setattr(recovery, "read_postgres", read_with_writes_around)
    manager = await start_manager()
    assert name in manager.rebuilt
    marker = await writer.refuse(name)
    await manager.wait_for(marker.source, timeout=20)
    collection = manager.collection(name)
    assert collection is not None
    assert set(collection.metadata) == await writer.chunk_ids(name)
    assert collection.lexical.ids() == set(collection.metadata)
    assert len(collection) == 3


async def test_snapshots_are_written_in_the_background(
    writer: RagWriter,
    rag_pool: asyncpg.Pool,
    kafka_settings: KafkaSettings,
    tmp_path: Path,
) -> None:
    settings = RagSettings(ingest_partitions=2, snapshot_interval_seconds=0.3)
    manager = IndexManager(
        settings,
        pool=rag_pool,
        metrics=RagMetrics(new_registry()),
        topic=writer.index_topic,
        ingest_topic=writer.ingest_topic,
        kafka=kafka_settings,
        snapshot_root=tmp_path,
    )
    name = await writer.new_collection()
    await manager.start()
    try:
        event = await writer.upsert(name, "a", ["Snapshot me."])
        await manager.wait_for(event.source, timeout=20)
        await wait_until((tmp_path / name / "CURRENT").exists, timeout=10)
    finally:
        await manager.stop()


async def test_a_clean_stop_can_snapshot_so_the_restart_replays_nothing(
    writer: RagWriter, start_manager: StartManager, embedder: Embedder, tmp_path: Path
) -> None:
    root = tmp_path / "replica"
    name = await writer.new_collection()
    manager = await start_manager(root)
    last = await fill(writer, name, partition=1)
    await manager.wait_for(last, timeout=20)
    expected = await answers(manager, embedder, name)
    positions = manager.positions()
    await manager.stop(snapshot=True)
    restarted = await start_manager(root)
    assert name not in restarted.rebuilt
    assert restarted.positions() == positions
    assert await answers(restarted, embedder, name) == expected
