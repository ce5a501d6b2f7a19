"""Snapshots of collection indexes on local disk, and what each one covers.

Layout under ``<snapshot_dir>/<replica_id>/``::

    <collection>/CURRENT                 names the current generation folder
    <collection>/gen-000000000007/       VectorIndex.save() files (manifest.json, ...)
                                 metadata.json   chunk id -> metadata
                                 lexical.npz     the chunks' analysed words (LexicalIndex)
                                 state.json      what the snapshot covers (below)

``<collection>`` is the collection's index key with ``/`` as ``.``: the bare name for
the default tenant (the layout from before tenants), ``<tenant>.<name>`` for another
tenant (neither tenant ids nor collection names contain a dot, so folder names never
collide). ``state.json`` records the collection's hnswlib parameters, ``resume`` (per index
topic partition, the next offset to read: every event before it is in the
snapshot), ``versions`` (the collection's applied source offsets per ingest
partition), ``applied`` (the replica's, at that moment), and the checksums of the
index, metadata and lexical files it belongs to. The lexical index is saved and
loaded with the vectors, under the same lock, so both describe the same versions; a
snapshot of an older format (vectors only) counts as corrupt, and that collection is
rebuilt from PostgreSQL once.

Writes are crash-safe without locks between processes (one replica owns its
folder): a new generation is written beside the current one and ``CURRENT`` is
renamed into place last, so a crash at any point leaves the previous generation
whole. A collection whose index did not change since its last snapshot only gets a
new ``state.json`` (written to a temporary name, then renamed) with newer offsets.
Anything that does not check out raises ``SnapshotCorrupt``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from x0_common.events.rag import IndexParams
from x0_rag.adapters.hnsw import VectorIndex
from x0_rag.adapters.index.collection import CollectionIndex, versions_from
from x0_rag.adapters.lexical import LexicalIndex
from x0_rag.domain import snapshot as files
from x0_rag.errors import SnapshotCorrupt, SnapshotMissing

# 2: lexical.npz and its checksum (format 1 had vectors only).
STATE_FORMAT: Final = 2
CURRENT: Final = "CURRENT"
STATE: Final = "state.json"
METADATA: Final = "metadata.json"
LEXICAL: Final = "lexical.npz"
_GENERATION_PREFIX: Final = "gen-"


@dataclass(frozen=True, slots=True)
class SnapshotState:
    """What one snapshot covers (the content of ``state.json``)."""

    collection: str
    params: IndexParams
    resume: dict[int, int]
    versions: dict[int, int]
    applied: dict[int, int]
    saved_at: float
    generation: int
    index_sha256: str
    metadata_sha256: str
    lexical_sha256: str

    def to_json(self) -> str:
        """``state.json``'s content."""
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "collection": self.collection,
                "params": self.params.model_dump(),
                "resume": self.resume,
                "versions": self.versions,
                "applied": self.applied,
                "saved_at": self.saved_at,
                "generation": self.generation,
                "index_sha256": self.index_sha256,
                "metadata_sha256": self.metadata_sha256,
                "lexical_sha256": self.lexical_sha256,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str, folder: Path) -> SnapshotState:
        """Parse ``state.json``; ``SnapshotCorrupt`` when it is not one."""
        try:
            raw = json.loads(text)
            if raw["format"] != STATE_FORMAT:
                raise SnapshotCorrupt(folder, f"unsupported state format {raw['format']}")
            return cls(
                collection=str(raw["collection"]),
                params=IndexParams.model_validate(raw["params"]),
                resume=versions_from(raw["resume"]),
                versions=versions_from(raw["versions"]),
                applied=versions_from(raw["applied"]),
                saved_at=float(raw["saved_at"]),
                generation=int(raw["generation"]),
                index_sha256=str(raw["index_sha256"]),
                metadata_sha256=str(raw["metadata_sha256"]),
                lexical_sha256=str(raw["lexical_sha256"]),
            )
        except SnapshotCorrupt:
            raise
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise SnapshotCorrupt(folder, f"{STATE} is malformed: {error}") from error


class SnapshotStore:
    """Saves and loads the snapshots of one replica's collections (blocking: use a thread)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, collection: str) -> Path:
        """Where a collection's generations live (``collection``: its index key)."""
        return self.root / collection.replace("/", ".")

    def collections(self) -> list[str]:
        """Index keys of the collections with a snapshot folder (valid or not)."""
        if not self.root.is_dir():
            return []
        return sorted(
            path.name.replace(".", "/", 1) for path in self.root.iterdir() if path.is_dir()
        )

    def write(
        self,
        collection: CollectionIndex,
        previous: SnapshotState | None,
        *,
        resume: dict[int, int],
        applied: dict[int, int],
    ) -> tuple[SnapshotState, bool]:
        """A new generation when the index changed since ``previous`` (or there is none),
        else newer offsets only; returns the state and whether it was written in full."""
        if collection.dirty or previous is None:
            state = self.save(collection, resume=resume, applied=applied)
            collection.dirty = False
            return state, True
        return self.advance(previous, resume=resume, applied=applied), False

    def save(
        self, collection: CollectionIndex, *, resume: dict[int, int], applied: dict[int, int]
    ) -> SnapshotState:
        """Write a new generation of ``collection`` and make it current."""
        folder = self.folder(collection.name)
        folder.mkdir(parents=True, exist_ok=True)
        generation = self._current_generation(folder) + 1
        target = folder / f"{_GENERATION_PREFIX}{generation:012d}"
        shutil.rmtree(target, ignore_errors=True)  # left by a crash mid-write
        manifest = collection.index.save(target, generation)
        metadata = json.dumps({str(k): v for k, v in collection.metadata.items()}).encode()
        _write_atomically(target / METADATA, metadata)
        lexical = collection.lexical.to_bytes()
        _write_atomically(target / LEXICAL, lexical)
        state = SnapshotState(
            collection=collection.name,
            params=collection.params,
            resume=dict(resume),
            versions=dict(collection.versions),
            applied=dict(applied),
            saved_at=time.time(),
            generation=generation,
            index_sha256=manifest.index_sha256,
            metadata_sha256=hashlib.sha256(metadata).hexdigest(),
            lexical_sha256=hashlib.sha256(lexical).hexdigest(),
        )
        _write_atomically(target / STATE, state.to_json().encode())
        files.fsync_directory(target)
        _write_atomically(folder / CURRENT, target.name.encode())
        for old in folder.iterdir():
            if old.name.startswith(_GENERATION_PREFIX) and old != target:
                shutil.rmtree(old, ignore_errors=True)
        return state

    def advance(
        self, state: SnapshotState, *, resume: dict[int, int], applied: dict[int, int]
    ) -> SnapshotState:
        """Record newer offsets for an unchanged index (rewrites ``state.json`` only)."""
        newer = SnapshotState(
            collection=state.collection,
            params=state.params,
            resume=dict(resume),
            versions=state.versions,
            applied=dict(applied),
            saved_at=time.time(),
            generation=state.generation,
            index_sha256=state.index_sha256,
            metadata_sha256=state.metadata_sha256,
            lexical_sha256=state.lexical_sha256,
        )
        target = self.folder(state.collection) / f"{_GENERATION_PREFIX}{state.generation:012d}"
        _write_atomically(target / STATE, newer.to_json().encode())
        return newer

    def load(self, name: str) -> tuple[CollectionIndex, SnapshotState]:
        """The current snapshot of ``name``, checked; ``SnapshotMissing`` or ``SnapshotCorrupt``."""
        folder = self.folder(name)
        try:
            current = (folder / CURRENT).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            raise SnapshotMissing(name) from None
        except (OSError, UnicodeDecodeError) as error:
            raise SnapshotCorrupt(folder, f"cannot read {CURRENT}: {error}") from error
        target = folder / current
        if not current.startswith(_GENERATION_PREFIX) or Path(current).name != current:
            raise SnapshotCorrupt(folder, f"{CURRENT} does not name a generation")
        index, manifest = VectorIndex.load(target)
        try:
            state = SnapshotState.from_json((target / STATE).read_text(encoding="utf-8"), target)
            metadata_bytes = (target / METADATA).read_bytes()
            lexical_bytes = (target / LEXICAL).read_bytes()
        except (OSError, UnicodeDecodeError) as error:
            raise SnapshotCorrupt(target, f"cannot read its state: {error}") from error
        if state.collection != name or state.index_sha256 != manifest.index_sha256:
            raise SnapshotCorrupt(target, f"{STATE} belongs to another index")
        if hashlib.sha256(metadata_bytes).hexdigest() != state.metadata_sha256:
            raise SnapshotCorrupt(target, f"{METADATA} does not match its checksum")
        if hashlib.sha256(lexical_bytes).hexdigest() != state.lexical_sha256:
            raise SnapshotCorrupt(target, f"{LEXICAL} does not match its checksum")
        try:
            raw: Any = json.loads(metadata_bytes)
            metadata = {int(k): v for k, v in raw.items()}
        except (ValueError, AttributeError) as error:
            raise SnapshotCorrupt(target, f"{METADATA} is malformed: {error}") from error
        if len(metadata) != len(index) or not all(k in index for k in metadata):
            raise SnapshotCorrupt(target, f"{METADATA} disagrees with the index's ids")
        try:
            lexical = LexicalIndex.from_bytes(lexical_bytes)
        except ValueError as error:
            raise SnapshotCorrupt(target, f"{LEXICAL} is malformed: {error}") from error
        if not lexical.ids() <= set(metadata):
            raise SnapshotCorrupt(target, f"{LEXICAL} holds chunks the index does not")
        index.ef = state.params.ef
        loaded = CollectionIndex(
            name=name,
            params=state.params,
            index=index,
            metadata=metadata,
            versions=dict(state.versions),
            lexical=lexical,
            dirty=False,
        )
        return loaded, state

    def delete(self, collection: str) -> None:
        """Forget a collection's snapshots (it was deleted)."""
        shutil.rmtree(self.folder(collection), ignore_errors=True)

    @staticmethod
    def _current_generation(folder: Path) -> int:
        numbers = [
            int(path.name.removeprefix(_GENERATION_PREFIX))
            for path in folder.iterdir()
            if path.name.startswith(_GENERATION_PREFIX)
            and path.name.removeprefix(_GENERATION_PREFIX).isdigit()
        ]
        return max(numbers, default=0)


def _write_atomically(path: Path, content: bytes) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    with staging.open("wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())
    staging.replace(path)
    files.fsync_directory(path.parent)
