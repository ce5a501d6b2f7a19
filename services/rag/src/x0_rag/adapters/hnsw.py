"""One collection's vectors in an hnswlib index (cosine, 384 dimensions by default).

Labels are the caller's int64 chunk ids (>= 0). What hnswlib 0.8.0 does not do for
us, and this wrapper does:

- Concurrency: ``add_items`` and ``knn_query`` must never overlap and
  ``resize_index`` excludes both, so every call on the index holds one
  ``threading.Lock`` (callers include the embedding thread and the event loop).
- Growth: capacity doubles before an insert would overflow it.
- Upsert: a live id is updated in place; a deleted id that still owns its slot is
  unmarked and updated; a new id takes a slot freed by ``delete``
  (``allow_replace_deleted=True`` + ``add_items(replace_deleted=True)``), else a new
  slot. ``replace_deleted=True`` is only ever passed for ids the index does not
  hold: hnswlib would otherwise move such an id to a freed slot and leave its old
  vector searchable under the same id.
- Search never fails for lack of results: ``k`` is clamped to the live count, and
  when hnswlib cannot fill ``k`` (a filter matching fewer, or deletions cutting the
  graph) an exact scan over the matching ids answers instead.
- ``ef`` is not saved by ``save_index``; snapshots keep it in their manifest.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import hnswlib
import numpy as np
import numpy.typing as npt

from x0_rag.domain import snapshot, vectors
from x0_rag.domain.snapshot import SnapshotManifest
from x0_rag.errors import InvalidInput, SnapshotCorrupt

DIMENSIONS: Final = 384
SPACE: Final = "cosine"
# Measured: 20,000 real embeddings (this model, sentences from installed packages'
# docstrings), 500 held-out queries, recall@10 against exact search, 1 search thread.
# M=16, ef_construction=200: ef=32 0.964 (0.09 ms), ef=64 0.990 (0.16 ms),
# ef=128 0.998 (0.28 ms). M=32 gains <0.01 at ef=64 for twice the link memory.
# Random unit vectors are far harder (no neighbourhood structure): 0.27 at ef=64,
# 0.86 with M=32/ef=256; they say little about text. Raise ef for big collections.
DEFAULT_M: Final = 16
DEFAULT_EF_CONSTRUCTION: Final = 200
DEFAULT_EF: Final = 64
DEFAULT_CAPACITY: Final = 1024

Ids = npt.NDArray[np.int64]
Distances = npt.NDArray[np.float32]
LabelFilter = Callable[[int], bool]


@dataclass(frozen=True, slots=True)
class IndexStats:
    """Searchable vectors, slots marked deleted (reused by inserts), and capacity."""

    element_count: int
    deleted_count: int
    capacity: int


class VectorIndex:
    """A thread-safe, growing hnswlib index of one collection's chunk vectors."""

    def __init__(
        self,
        *,
        dim: int = DIMENSIONS,
        m: int = DEFAULT_M,
        ef_construction: int = DEFAULT_EF_CONSTRUCTION,
        ef: int = DEFAULT_EF,
        capacity: int = DEFAULT_CAPACITY,
        num_threads: int = 1,
        seed: int = 100,
    ) -> None:
        """An empty index; ``num_threads`` is what ``upsert`` uses for batch inserts."""
        if min(dim, m, ef_construction, ef, capacity, num_threads) < 1:
            raise ValueError("index parameters must be >= 1")
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.init_index(
            max_elements=capacity,
            M=m,
            ef_construction=ef_construction,
            random_seed=seed,
            allow_replace_deleted=True,
        )
        index.set_ef(ef)
        self._attach(index, ef=ef, num_threads=num_threads, live=set())

    def _attach(self, index: hnswlib.Index, *, ef: int, num_threads: int, live: set[int]) -> None:
        self._index = index
        self._ef = ef
        self.num_threads = num_threads
        self._lock = threading.Lock()
        self._live = live
        # Ids whose slot was marked deleted. hnswlib hands freed slots to new ids in
        # an order we cannot see, so an id here may have lost its slot since: upsert
        # tries to unmark it and treats "Label not found" as a new id.
        self._deleted: set[int] = set()

    @property
    def dim(self) -> int:
        """Vector dimensions."""
        return int(self._index.dim)

    @property
    def ef(self) -> int:
        """Default search breadth (``ef``) when ``search`` is not given one."""
        return self._ef

    @ef.setter
    def ef(self, value: int) -> None:
        if value < 1:
            raise ValueError("ef must be >= 1")
        with self._lock:
            self._index.set_ef(value)
            self._ef = value

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._live

    def stats(self) -> IndexStats:
        """Counts for metrics and the snapshot manifest."""
        with self._lock:
            return self._stats()

    def _stats(self) -> IndexStats:
        total = int(self._index.element_count)
        return IndexStats(len(self._live), total - len(self._live), int(self._index.max_elements))

    def upsert(self, ids: Iterable[int], rows: npt.ArrayLike) -> None:
        """Insert or replace the vectors of ``ids`` (row ``i`` of ``rows`` is ``ids[i]``).

        If an id repeats, its last row wins. Vectors need not be normalised (cosine).
        """
        labels = vectors.as_ids(ids)
        checked = vectors.as_rows(rows, self.dim)
        if len(labels) != len(checked):
            raise InvalidInput(
                "one vector per id", details={"ids": len(labels), "vectors": len(checked)}
            )
        if len(labels) == 0:
            return
        keep = vectors.last_occurrences(labels)
        labels, checked = labels[keep], checked[keep]
        with self._lock:
            self._upsert(labels, checked)

    def _upsert(self, labels: Ids, rows: npt.NDArray[np.float32]) -> None:
        present = np.array([self._in_place(int(label)) for label in labels], dtype=bool)
        if present.any():
            self._index.add_items(rows[present], labels[present], num_threads=self.num_threads)
            self._live.update(labels[present].tolist())
        fresh = ~present
        if fresh.any():
            count = int(fresh.sum())
            vacant = int(self._index.element_count) - len(self._live)
            needed = int(self._index.element_count) + max(0, count - vacant)
            capacity = int(self._index.max_elements)
            if needed > capacity:
                self._index.resize_index(max(needed, 2 * capacity))
            self._index.add_items(
                rows[fresh], labels[fresh], num_threads=self.num_threads, replace_deleted=True
            )
            self._live.update(labels[fresh].tolist())
        self._forget_stale_deleted()

    def _in_place(self, label: int) -> bool:
        """Whether ``label`` owns a slot (unmarking it if it was deleted)."""
        if label in self._live:
            return True
        if label in self._deleted:
            self._deleted.discard(label)
            try:
                self._index.unmark_deleted(label)
            except RuntimeError:  # its slot went to another id meanwhile
                return False
            return True
        return False

    def _forget_stale_deleted(self) -> None:
        vacant = int(self._index.element_count) - len(self._live)
        if vacant == 0:
            self._deleted.clear()
        elif len(self._deleted) > 2 * vacant + 1024:
            # Rare and O(n): recompute exactly which ids still own a deleted slot.
            self._deleted = {int(label) for label in self._index.get_ids_list()} - self._live

    def delete(self, ids: Iterable[int]) -> int:
        """Remove ``ids`` from search results; unknown ids are ignored. Returns how many went."""
        removed = 0
        with self._lock:
            for label in {int(label) for label in ids}:
                if label in self._live:
                    self._index.mark_deleted(label)
                    self._live.discard(label)
                    self._deleted.add(label)
                    removed += 1
        return removed

    def search(
        self,
        vector: npt.ArrayLike,
        k: int,
        *,
        ef: int | None = None,
        filter: LabelFilter | None = None,
    ) -> tuple[Ids, Distances]:
        """The up to ``k`` nearest live ids to ``vector``, nearest first, with cosine distances.

        ``filter(id)`` limits results to the ids it accepts. Fewer than ``k`` results
        come back only when fewer than ``k`` live ids (that pass the filter) exist.
        """
        query = vectors.as_rows(vector, self.dim, single=True)
        if k < 1 or (ef is not None and ef < 1):
            raise InvalidInput("k and ef must be >= 1", details={"k": k, "ef": ef})
        with self._lock:
            k = min(k, len(self._live))
            if k == 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            if ef is not None:
                self._index.set_ef(ef)
            try:
                labels, distances = self._index.knn_query(query, k=k, num_threads=1, filter=filter)
            except RuntimeError:
                # Fewer than k reachable matches: answer exactly from the matching ids.
                matching = np.fromiter(
                    (label for label in self._live if filter is None or filter(label)),
                    dtype=np.int64,
                )
                return vectors.exact_nearest(query, matching, self._index.get_items, k)
            finally:
                if ef is not None:
                    self._index.set_ef(self._ef)
        return labels[0].astype(np.int64), distances[0].astype(np.float32)

    def save(self, directory: Path | str, covered_sequence: int) -> SnapshotManifest:
        """Write a snapshot of the index to ``directory``; return its manifest.

        Atomic: the files get fresh names and the manifest that names them is
        renamed into place last, so a crash at any point leaves the previous
        snapshot whole. The lock is held only while hnswlib writes, not while
        hashing. One writer per folder.
        """
        if covered_sequence < 0:
            raise InvalidInput("covered_sequence must be >= 0")
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(8)
        index_file, labels_file = f"index-{token}.bin", f"labels-{token}.npy"
        staging_index, staging_labels = (
            folder / f".{index_file}.tmp",
            folder / f".{labels_file}.tmp",
        )
        with self._lock:
            self._index.save_index(str(staging_index))
            live = np.fromiter(self._live, dtype=np.int64, count=len(self._live))
            stats, ef = self._stats(), self._ef
        with staging_labels.open("wb") as stream:
            np.save(stream, np.sort(live), allow_pickle=False)
        for staging in (staging_index, staging_labels):
            snapshot.fsync_file(staging)
        manifest = SnapshotManifest(
            format=snapshot.SNAPSHOT_FORMAT,
            dim=self.dim,
            space=SPACE,
            m=int(self._index.M),
            ef_construction=int(self._index.ef_construction),
            ef=ef,
            element_count=stats.element_count,
            deleted_count=stats.deleted_count,
            capacity=stats.capacity,
            covered_sequence=covered_sequence,
            index_file=index_file,
            index_sha256=snapshot.file_sha256(staging_index),
            labels_file=labels_file,
            labels_sha256=snapshot.file_sha256(staging_labels),
        )
        staging_index.replace(folder / index_file)
        staging_labels.replace(folder / labels_file)
        snapshot.commit_manifest(folder, manifest)
        return manifest

    @classmethod
    def load(
        cls, directory: Path | str, *, dim: int = DIMENSIONS, num_threads: int = 1
    ) -> tuple[VectorIndex, SnapshotManifest]:
        """Read the snapshot in ``directory``, checked against its manifest and checksums.

        Raises ``SnapshotCorrupt`` on a missing or malformed manifest, a missing,
        truncated or altered file, or parameters other than ``dim``/cosine. The
        file is checksummed before hnswlib parses it: hnswlib trusts its input.
        """
        folder = Path(directory)
        manifest = snapshot.read_manifest(folder)
        manifest.expect(folder, dim=dim, space=SPACE)
        index = hnswlib.Index(space=SPACE, dim=dim)
        try:
            index.load_index(str(folder / manifest.index_file), allow_replace_deleted=True)
            with (folder / manifest.labels_file).open("rb") as stream:
                live = np.load(stream, allow_pickle=False)
        except (RuntimeError, OSError, ValueError) as error:
            raise SnapshotCorrupt(folder, f"{type(error).__name__}: {error}") from error
        saved = (int(index.M), int(index.ef_construction), int(index.element_count))
        expected = (
            manifest.m,
            manifest.ef_construction,
            manifest.element_count + manifest.deleted_count,
        )
        if saved != expected or live.dtype != np.int64 or len(live) != manifest.element_count:
            raise SnapshotCorrupt(folder, "index file disagrees with its manifest")
        labels = {int(label) for label in index.get_ids_list()}
        live_ids = {int(label) for label in live}
        if not live_ids <= labels:
            raise SnapshotCorrupt(folder, "live ids missing from the index file")
        index.set_ef(manifest.ef)  # save_index does not keep ef
        loaded = cls.__new__(cls)
        loaded._attach(index, ef=manifest.ef, num_threads=num_threads, live=live_ids)
        loaded._deleted = labels - live_ids
        return loaded, manifest
