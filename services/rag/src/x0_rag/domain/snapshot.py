"""The manifest of a vector-index snapshot: what was saved, and how to check it.

A snapshot folder holds ``manifest.json`` plus the files it names (the hnswlib
index and the array of live chunk ids). The manifest is written last and renamed
into place, so it is the commit point: a folder whose manifest is missing,
unreadable or disagrees with its files is corrupt, and the worker rebuilds the
index from Postgres and replays Kafka from the last durable offset instead.

``covered_sequence`` is the last ingest sequence number (Kafka offset) whose
effect the index contains; replay resumes after it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

from x0_rag.errors import SnapshotCorrupt

SNAPSHOT_FORMAT: Final = 1
# The data files ``VectorIndex.save`` writes, and their staging names while it writes.
_OWN_FILE: Final = re.compile(r"\.?(index|labels)-[0-9a-f]+\.(bin|npy)(\.tmp)?")
MANIFEST_NAME: Final = "manifest.json"

_INT_FIELDS: Final = (
    "format",
    "dim",
    "m",
    "ef_construction",
    "ef",
    "element_count",
    "deleted_count",
    "capacity",
    "covered_sequence",
)
_STR_FIELDS: Final = ("space", "index_file", "index_sha256", "labels_file", "labels_sha256")


@dataclass(frozen=True, slots=True)
class SnapshotManifest:
    """Parameters, counts and checksums of one saved index."""

    format: int
    dim: int
    space: str
    m: int
    ef_construction: int
    ef: int
    element_count: int  # live (searchable) vectors
    deleted_count: int  # slots marked deleted, reusable by later inserts
    capacity: int
    covered_sequence: int
    index_file: str
    index_sha256: str
    labels_file: str
    labels_sha256: str

    def to_json(self) -> str:
        """The manifest file's content (sorted keys, so equal manifests are equal bytes)."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, directory: Path) -> SnapshotManifest:
        """Parse and type-check a manifest; raise ``SnapshotCorrupt`` when it is not one."""
        try:
            raw: Any = json.loads(text)
        except ValueError as error:
            raise SnapshotCorrupt(directory, f"manifest is not JSON: {error}") from error
        if not isinstance(raw, dict):
            raise SnapshotCorrupt(directory, "manifest is not a JSON object")
        for name in _INT_FIELDS:
            value = raw.get(name)
            # bool is an int in Python, never in a manifest.
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise SnapshotCorrupt(directory, f"manifest field {name!r} is not an int >= 0")
        for name in _STR_FIELDS:
            if not isinstance(raw.get(name), str) or not raw[name]:
                raise SnapshotCorrupt(directory, f"manifest field {name!r} is not a string")
        for name in ("index_file", "labels_file"):
            # Only plain names in the snapshot folder: a manifest must not point elsewhere.
            if Path(raw[name]).name != raw[name] or raw[name].startswith("."):
                raise SnapshotCorrupt(directory, f"manifest field {name!r} is not a file name")
        if raw["format"] != SNAPSHOT_FORMAT:
            raise SnapshotCorrupt(directory, f"unsupported snapshot format {raw['format']}")
        return cls(**{name: raw[name] for name in (*_INT_FIELDS, *_STR_FIELDS)})

    def expect(self, directory: Path, *, dim: int, space: str) -> None:
        """Raise ``SnapshotCorrupt`` unless the snapshot fits the index the caller wants."""
        if (self.dim, self.space) != (dim, space):
            raise SnapshotCorrupt(
                directory,
                f"snapshot holds {self.space}/{self.dim} vectors, expected {space}/{dim}",
            )
        if self.element_count + self.deleted_count > self.capacity:
            raise SnapshotCorrupt(directory, "manifest counts exceed its capacity")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's content, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a written file to disk, so that a rename never exposes a partial file."""
    with path.open("rb+") as stream:
        os.fsync(stream.fileno())


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries (the renames) to disk."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def read_manifest(directory: Path) -> SnapshotManifest:
    """Read ``manifest.json`` and check both files against their checksums."""
    try:
        text = (directory / MANIFEST_NAME).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SnapshotCorrupt(directory, f"cannot read {MANIFEST_NAME}: {error}") from error
    manifest = SnapshotManifest.from_json(text, directory)
    for name, expected in (
        (manifest.index_file, manifest.index_sha256),
        (manifest.labels_file, manifest.labels_sha256),
    ):
        try:
            actual = file_sha256(directory / name)
        except OSError as error:
            raise SnapshotCorrupt(directory, f"cannot read {name}: {error}") from error
        if actual != expected:
            raise SnapshotCorrupt(directory, f"{name} does not match its checksum")
    return manifest


def commit_manifest(directory: Path, manifest: SnapshotManifest) -> None:
    """Make ``manifest`` the folder's current snapshot (write, fsync, rename, fsync)."""
    staging = directory / f".{MANIFEST_NAME}.tmp"
    staging.write_text(manifest.to_json(), encoding="utf-8")
    fsync_file(staging)
    staging.replace(directory / MANIFEST_NAME)
    fsync_directory(directory)
    # The files of earlier snapshots are garbage only once the new manifest is durable.
    # Only names this module gives out are touched: callers may keep files of their own here.
    keep = {manifest.index_file, manifest.labels_file}
    for path in directory.iterdir():
        if path.name not in keep and _OWN_FILE.fullmatch(path.name):
            path.unlink(missing_ok=True)
