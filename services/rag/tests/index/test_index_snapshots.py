"""Snapshot generations on disk: round trips, crash safety, offsets-only updates, damage."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from x0_common.events.rag import IndexParams
from x0_rag.adapters.index.collection import CollectionIndex
from x0_rag.adapters.index.snapshots import SnapshotStore
from x0_rag.domain.filters import MetadataFilter
from x0_rag.errors import SnapshotCorrupt, SnapshotMissing

from .vectors import unit_vectors

pytestmark = pytest.mark.unit


ROWS = unit_vectors(300, seed=11)


def collection(name: str = "docs") -> CollectionIndex:
    built = CollectionIndex.empty(name, IndexParams(m=12, ef_construction=100, ef=40))
    built.upsert_rows(list(range(300)), ROWS)
    built.index.delete(range(100, 120))
    built.metadata = {i: {"even": i % 2 == 0} for i in range(300) if not 100 <= i < 120}
    built.versions = {0: 41, 1: 7}
    return built


def answers(built: CollectionIndex) -> list[list[tuple[int, float]]]:
    even = MetadataFilter.parse({"even": True})
    return [built.search(ROWS[i], 10, ef=None, where=even) for i in range(0, 300, 30)] + [
        built.search(ROWS[i], 10, ef=None, where=MetadataFilter()) for i in range(0, 300, 30)
    ]


def test_a_saved_collection_loads_with_identical_answers_and_offsets(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    original = collection()
    saved = store.save(original, resume={0: 100, 1: 9}, applied={0: 41, 1: 8})
    loaded, state = store.load("docs")
    assert state == saved
    assert (state.resume, state.versions, state.applied) == (
        {0: 100, 1: 9},
        {0: 41, 1: 7},
        {0: 41, 1: 8},
    )
    assert loaded.params == original.params
    assert loaded.index.ef == 40
    assert loaded.metadata == original.metadata
    assert loaded.versions == original.versions
    assert not loaded.dirty
    assert answers(loaded) == answers(original)
    assert store.collections() == ["docs"]


def test_a_crash_while_writing_leaves_the_previous_generation(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    first = collection()
    store.save(first, resume={0: 5}, applied={0: 4})
    # A later save that died before CURRENT moved: a half-written generation folder.
    broken = tmp_path / "docs" / "gen-000000000002"
    broken.mkdir()
    (broken / "index-0.bin").write_bytes(b"partial")
    loaded, state = store.load("docs")
    assert state.generation == 1
    assert answers(loaded) == answers(first)
    # The next save takes a fresh generation and clears the debris.
    second = store.save(first, resume={0: 6}, applied={0: 5})
    assert second.generation == 3
    assert sorted(p.name for p in (tmp_path / "docs").iterdir()) == ["CURRENT", "gen-000000000003"]


def test_an_unchanged_index_only_records_newer_offsets(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    saved = store.save(collection(), resume={0: 5}, applied={0: 4})
    index_files = sorted((tmp_path / "docs" / "gen-000000000001").glob("index-*"))
    advanced = store.advance(saved, resume={0: 50, 1: 3}, applied={0: 49})
    assert advanced.generation == saved.generation
    assert sorted((tmp_path / "docs" / "gen-000000000001").glob("index-*")) == index_files
    _, state = store.load("docs")
    assert (state.resume, state.applied) == ({0: 50, 1: 3}, {0: 49})
    assert state.versions == saved.versions


def test_no_snapshot_is_missing_not_corrupt(tmp_path: Path) -> None:
    with pytest.raises(SnapshotMissing):
        SnapshotStore(tmp_path).load("nothing")


def damage_index(generation: Path) -> None:
    target = next(generation.glob("index-*.bin"))
    raw = bytearray(target.read_bytes())
    raw[100] ^= 0x01
    target.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage",
    [
        damage_index,
        lambda g: (g / "metadata.json").write_text("{}"),
        lambda g: (g / "metadata.json").write_text("not json"),
        lambda g: (g / "state.json").unlink(),
        lambda g: (g / "state.json").write_text("[]"),
        lambda g: (g / "manifest.json").unlink(),
        lambda g: (g.parent / "CURRENT").write_text("../elsewhere"),
        shutil.rmtree,
    ],
)
def test_any_damage_is_snapshot_corrupt(tmp_path: Path, damage: object) -> None:
    store = SnapshotStore(tmp_path)
    store.save(collection(), resume={0: 1}, applied={0: 0})
    generation = tmp_path / "docs" / "gen-000000000001"
    assert callable(damage)
    damage(generation)
    with pytest.raises(SnapshotCorrupt):
        store.load("docs")


def test_state_of_another_index_is_refused(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(collection(), resume={0: 1}, applied={0: 0})
    state_file = tmp_path / "docs" / "gen-000000000001" / "state.json"
    state = json.loads(state_file.read_text())
    state["index_sha256"] = "0" * 64
    state_file.write_text(json.dumps(state))
    with pytest.raises(SnapshotCorrupt, match="another index"):
        store.load("docs")


def test_a_tenants_collection_has_a_folder_of_its_own(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(collection("docs"), resume={0: 1}, applied={0: 0})
    store.save(collection("acme/docs"), resume={0: 1}, applied={0: 0})
    # The default tenant keeps the layout from before tenants; another tenant's folder
    # is "<tenant>.<name>" (no tenant id or collection name has a dot).
    assert sorted(path.name for path in tmp_path.iterdir()) == ["acme.docs", "docs"]
    assert store.collections() == ["acme/docs", "docs"]
    loaded, state = store.load("acme/docs")
    assert (loaded.name, state.collection) == ("acme/docs", "acme/docs")
    store.delete("acme/docs")
    assert store.collections() == ["docs"]
