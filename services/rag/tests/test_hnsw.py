"""VectorIndex: growth, upsert/delete semantics, filters, concurrency."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt
import pytest

from x0_rag.adapters.hnsw import VectorIndex
from x0_rag.domain import InvalidInput

from .index.vectors import DIM, unit_vectors

pytestmark = pytest.mark.unit


def exact(
    rows: npt.NDArray[np.float32],
    ids: npt.NDArray[np.int64],
    query: npt.NDArray[np.float32],
    k: int,
) -> npt.NDArray[np.int64]:
    return ids[np.argsort(-(rows @ query), kind="stable")[:k]]


def test_grows_far_past_its_initial_capacity() -> None:
    index = VectorIndex(capacity=100)
    rows = unit_vectors(5000, seed=1)
    for first in range(0, 5000, 250):
        index.upsert(range(first, first + 250), rows[first : first + 250])
    stats = index.stats()
    assert (stats.element_count, stats.deleted_count) == (5000, 0)
    assert stats.capacity >= 5000
    assert len(index) == 5000
    hits = sum(int(index.search(rows[i], 1)[0][0]) == i for i in range(0, 5000, 25))
    assert hits >= 198  # self-lookup of 200 sampled vectors


def test_search_returns_ids_and_cosine_distances_nearest_first() -> None:
    index = VectorIndex()
    rows = unit_vectors(300, seed=2)
    ids = np.arange(1000, 1300, dtype=np.int64)
    index.upsert(ids, rows * 3.0)  # scale does not matter in cosine space
    query = unit_vectors(1, seed=3)[0]
    found, distances = index.search(query, 10, ef=300)
    assert found.dtype == np.int64
    assert distances.dtype == np.float32
    assert list(found) == list(exact(rows, ids, query, 10))
    np.testing.assert_allclose(distances, 1 - rows[found - 1000] @ query, atol=1e-5)
    assert list(distances) == sorted(distances)


def test_upsert_replaces_in_place() -> None:
    index = VectorIndex(capacity=10)
    rows = unit_vectors(6, seed=4)
    index.upsert([1, 2, 3], rows[:3])
    index.upsert([2], rows[5:6])
    assert index.stats().element_count == 3
    found, distances = index.search(rows[5], 1)
    assert (int(found[0]), float(distances[0])) == (2, pytest.approx(0, abs=1e-5))
    found, distances = index.search(rows[1], 3)  # the old vector is gone
    assert sorted(found.tolist()) == [1, 2, 3]
    assert float(distances.min()) > 1e-3


def test_replacing_an_id_while_deleted_slots_exist_leaves_no_stale_copy() -> None:
    # hnswlib's replace_deleted would move id 2 into 1's freed slot and leave its old
    # vector searchable as a second "2"; the wrapper must update in place instead.
    index = VectorIndex(capacity=10)
    rows = unit_vectors(8, seed=5)
    index.upsert(range(5), rows[:5])
    index.delete([1])
    index.upsert([2], rows[7:8])
    found, distances = index.search(rows[2], 4)
    assert len(set(found.tolist())) == len(found)
    assert not (found[0] == 2 and distances[0] < 1e-3)
    assert index.search(rows[7], 1)[0][0] == 2
    assert index.stats().element_count == 4


def test_delete_hides_ids_ignores_unknown_and_slots_are_reused() -> None:
    index = VectorIndex(capacity=100)
    rows = unit_vectors(150, seed=6)
    index.upsert(range(100), rows[:100])
    assert index.delete([*range(0, 100, 2), 999, 4]) == 50
    assert index.delete([0]) == 0  # twice: no-op
    stats = index.stats()
    assert (stats.element_count, stats.deleted_count, stats.capacity) == (50, 50, 100)
    found, _ = index.search(rows[0], 100)
    assert len(found) == 50
    assert all(int(label) % 2 == 1 for label in found)
    index.upsert(range(100, 150), rows[100:])  # new ids take the freed slots
    stats = index.stats()
    assert (stats.element_count, stats.deleted_count, stats.capacity) == (100, 0, 100)
    assert index.search(rows[120], 1)[0][0] == 120


def test_a_deleted_id_can_come_back() -> None:
    index = VectorIndex(capacity=8)
    rows = unit_vectors(12, seed=7)
    index.upsert(range(4), rows[:4])
    index.delete([0, 1])
    index.upsert([0], rows[10:11])  # still owns its slot: unmarked and updated
    index.upsert([5, 6], rows[4:6])  # take free slots (1's, at least)
    index.upsert([1], rows[11:12])  # its slot may be gone: inserted as new
    assert sorted(index.search(rows[0], 10)[0].tolist()) == [0, 1, 2, 3, 5, 6]
    assert index.search(rows[10], 1)[0][0] == 0
    assert index.search(rows[11], 1)[0][0] == 1
    assert index.stats().element_count == 6


def test_repeated_ids_in_one_upsert_keep_the_last_row() -> None:
    index = VectorIndex()
    rows = unit_vectors(3, seed=8)
    index.upsert([7, 7, 8], rows)
    assert len(index) == 2
    assert index.search(rows[1], 1)[0][0] == 7
    assert index.search(rows[0], 2)[1][0] > 1e-3  # the first row for 7 was dropped


def test_k_above_the_live_count_returns_everything() -> None:
    index = VectorIndex()
    assert [len(part) for part in index.search(unit_vectors(1, 9)[0], 5)] == [0, 0]
    rows = unit_vectors(7, seed=9)
    index.upsert(range(7), rows)
    index.delete([3])
    found, distances = index.search(rows[0], 50)
    assert sorted(found.tolist()) == [0, 1, 2, 4, 5, 6]
    assert len(distances) == 6


def test_filters_never_fail_and_fall_back_to_an_exact_scan() -> None:
    index = VectorIndex(capacity=500)
    rows = unit_vectors(2000, seed=10)
    ids = np.arange(2000, dtype=np.int64)
    index.upsert(ids, rows)
    query = unit_vectors(1, seed=11)[0]
    allowed = {5, 17, 1234}
    found, distances = index.search(query, 10, filter=allowed.__contains__)
    assert list(found) == list(exact(rows[sorted(allowed)], np.array(sorted(allowed)), query, 10))
    np.testing.assert_allclose(distances, 1 - rows[found] @ query, atol=1e-5)
    assert len(index.search(query, 10, filter=lambda _: False)[0]) == 0
    # A filter matching plenty: hnswlib answers, filtered.
    even, _ = index.search(query, 10, filter=lambda label: label % 2 == 0)
    assert len(even) == 10
    assert all(label % 2 == 0 for label in even)


def test_per_query_ef_does_not_change_the_default() -> None:
    index = VectorIndex(ef=20)
    rows = unit_vectors(50, seed=12)
    index.upsert(range(50), rows)
    index.search(rows[0], 5, ef=200)
    assert index.ef == 20
    index.ef = 80
    assert index.ef == 80


@pytest.mark.parametrize(
    ("ids", "rows"),
    [
        ([1, 2], unit_vectors(1, 13)),  # count mismatch
        ([-1], unit_vectors(1, 13)),  # negative id
        ([2**63], unit_vectors(1, 13)),  # beyond int64
        ([1], np.ones((1, 10), np.float32)),  # wrong dimension
        ([1], np.zeros((1, DIM), np.float32)),  # no direction
        ([1], np.full((1, DIM), np.nan, np.float32)),
    ],
)
def test_bad_upserts_are_rejected_before_touching_the_index(
    ids: list[int], rows: npt.NDArray[np.float32]
) -> None:
    index = VectorIndex()
    with pytest.raises(InvalidInput):
        index.upsert(ids, rows)
    assert index.stats().element_count == 0


def test_bad_searches_are_rejected() -> None:
    index = VectorIndex()
    index.upsert([1], unit_vectors(1, 14))
    for vector, k in [(np.ones(10), 1), (unit_vectors(2, 14), 1), (unit_vectors(1, 14)[0], 0)]:
        with pytest.raises(InvalidInput):
            index.search(vector, k)


def test_concurrent_upserts_searches_and_deletes() -> None:
    # Unguarded, hnswlib corrupts memory here (add_items during resize or search).
    index = VectorIndex(capacity=16)
    rows = unit_vectors(4000, seed=15)
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for first in range(offset, 4000, 400):
                index.upsert(range(first, first + 100), rows[first : first + 100])
                index.delete(range(first, first + 10))
        except BaseException as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    def reader(seed: int) -> None:
        try:
            for query in unit_vectors(300, seed):
                index.search(query, 10, filter=lambda label: label % 3 == 0)
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(offset,)) for offset in (0, 100, 200, 300)]
    threads += [threading.Thread(target=reader, args=(seed,)) for seed in (16, 17)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    stats = index.stats()
    assert stats.element_count == len(index) == 3600
    assert stats.deleted_count <= 400  # later inserts may have reused freed slots
    assert stats.element_count + stats.deleted_count <= stats.capacity
    expected = {label for first in range(0, 4000, 100) for label in range(first + 10, first + 100)}
    assert set(index.search(rows[0], 4000, ef=4000)[0].tolist()) == expected
