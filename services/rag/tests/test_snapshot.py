"""Index snapshots: identical answers after a round trip; any damage is SnapshotCorrupt."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from x0_rag.adapters.hnsw import VectorIndex
from x0_rag.domain import SnapshotCorrupt
from x0_rag.domain.snapshot import MANIFEST_NAME, SNAPSHOT_FORMAT

from .index.vectors import DIM, unit_vectors

pytestmark = pytest.mark.unit


@pytest.fixture
def index() -> VectorIndex:
    """2,000 vectors after some replacements and deletions (so deleted slots exist)."""
    built = VectorIndex(capacity=256, ef=37)
    rows = unit_vectors(2100, seed=1)
    built.upsert(range(2000), rows[:2000])
    built.upsert(range(0, 100), rows[2000:2100])
    built.delete(range(500, 600))
    return built


def manifest_of(directory: Path) -> dict[str, object]:
    return json.loads((directory / MANIFEST_NAME).read_text())


def test_round_trip_gives_identical_results(index: VectorIndex, tmp_path: Path) -> None:
    manifest = index.save(tmp_path, covered_sequence=41_337)
    loaded, read = VectorIndex.load(tmp_path)
    assert read == manifest
    assert (read.covered_sequence, read.format, read.dim, read.space) == (
        41_337,
        SNAPSHOT_FORMAT,
        DIM,
        "cosine",
    )
    assert (read.element_count, read.deleted_count) == (1900, 100)
    assert loaded.stats() == index.stats()
    assert loaded.ef == 37  # hnswlib does not save ef; the manifest does
    for query in unit_vectors(200, seed=2):
        for kwargs in ({}, {"ef": 120}, {"filter": lambda label: label % 7 == 0}):
            expected = index.search(query, 10, **kwargs)  # type: ignore[arg-type]
            actual = loaded.search(query, 10, **kwargs)  # type: ignore[arg-type]
            np.testing.assert_array_equal(actual[0], expected[0])
            np.testing.assert_array_equal(actual[1], expected[1])


def test_loaded_index_keeps_upsert_and_delete_semantics(index: VectorIndex, tmp_path: Path) -> None:
    index.save(tmp_path, covered_sequence=1)
    loaded, _ = VectorIndex.load(tmp_path)
    rows = unit_vectors(3, seed=3)
    loaded.upsert([550, 5000, 7], rows)  # a deleted id, a new id, a live id
    assert (loaded.stats().element_count, loaded.stats().deleted_count) == (1902, 98)
    for label, row in zip([550, 5000, 7], rows, strict=True):
        found, distances = loaded.search(row, 2)
        assert int(found[0]) == label
        assert float(distances[0]) == pytest.approx(0, abs=1e-5)
        assert int(found[1]) != label
    assert loaded.delete([550, 12345]) == 1


def test_saving_again_replaces_the_snapshot_and_its_files(
    index: VectorIndex, tmp_path: Path
) -> None:
    index.save(tmp_path, covered_sequence=1)
    index.delete([1, 2, 3])
    (tmp_path / "state.json").write_text("{}")  # a caller's own file stays
    (tmp_path / ".index-0123abcd.bin.tmp").write_bytes(b"left by a crash")
    second = index.save(tmp_path, covered_sequence=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        [MANIFEST_NAME, "state.json", second.index_file, second.labels_file]
    )
    loaded, manifest = VectorIndex.load(tmp_path)
    assert (manifest.covered_sequence, len(loaded)) == (2, 1897)


def test_an_empty_index_round_trips(tmp_path: Path) -> None:
    VectorIndex().save(tmp_path, covered_sequence=0)
    loaded, manifest = VectorIndex.load(tmp_path)
    assert (len(loaded), manifest.element_count) == (0, 0)
    assert len(loaded.search(unit_vectors(1, 4)[0], 3)[0]) == 0


def _truncate_index(directory: Path) -> None:
    path = directory / str(manifest_of(directory)["index_file"])
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip_a_bit(directory: Path) -> None:
    path = directory / str(manifest_of(directory)["index_file"])
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x10
    path.write_bytes(bytes(data))


def _flip_a_label_bit(directory: Path) -> None:
    path = directory / str(manifest_of(directory)["labels_file"])
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def _remove(name: str) -> Callable[[Path], None]:
    def remove(directory: Path) -> None:
        target = name if name == MANIFEST_NAME else str(manifest_of(directory)[name])
        (directory / target).unlink()

    return remove


def _edit_manifest(**changes: object) -> Callable[[Path], None]:
    def edit(directory: Path) -> None:
        raw = manifest_of(directory) | changes
        (directory / MANIFEST_NAME).write_text(json.dumps(raw))

    return edit


def _garble_manifest(directory: Path) -> None:
    (directory / MANIFEST_NAME).write_text('{"format": 1, "dim": ')


@pytest.mark.parametrize(
    "damage",
    [
        _truncate_index,
        _flip_a_bit,
        _flip_a_label_bit,
        _remove(MANIFEST_NAME),
        _remove("index_file"),
        _remove("labels_file"),
        _garble_manifest,
        _edit_manifest(format=99),
        _edit_manifest(dim=768),
        _edit_manifest(space="l2"),
        _edit_manifest(element_count=1901),  # checksums fine, counts disagree
        _edit_manifest(m=48),
        _edit_manifest(covered_sequence="7"),
        _edit_manifest(index_file="../elsewhere.bin"),
        _edit_manifest(index_sha256="0" * 64),
    ],
)
def test_damaged_snapshots_raise_snapshot_corrupt(
    index: VectorIndex, tmp_path: Path, damage: Callable[[Path], None]
) -> None:
    index.save(tmp_path, covered_sequence=5)
    damage(tmp_path)
    with pytest.raises(SnapshotCorrupt) as caught:
        VectorIndex.load(tmp_path)
    assert caught.value.code == "unavailable"
    assert caught.value.directory == tmp_path


def test_loading_an_empty_folder_raises_snapshot_corrupt(tmp_path: Path) -> None:
    with pytest.raises(SnapshotCorrupt, match=MANIFEST_NAME):
        VectorIndex.load(tmp_path / "never-saved")
