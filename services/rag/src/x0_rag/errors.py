"""The rag service's one exception tree, rooted in ``x0_common.errors``.

    RagError                     code              raised when
    ├── InvalidInput             invalid_input     a value the caller sent is wrong (bad id,
    │   │                                          vector, chunking parameters)
    │   └── InvalidFilter        invalid_input     a metadata filter is malformed
    ├── NotFound                 not_found         a collection or document does not exist
    ├── Conflict                 conflict          a collection exists with other parameters
    ├── QuotaExceeded            quota_exceeded    the tenant's collections or documents
    │                                              quota is used up (403)
    ├── TooLarge                 too_large         a filter, batch or document above the limits
    ├── VersionNotApplied        deadline_exceeded this replica did not apply a version in time
    ├── SnapshotMissing          internal          a collection has no snapshot yet (never
    │                                              leaves the worker: it rebuilds the index)
    └── Unavailable              unavailable       a resource is missing or not usable (yet)
        ├── ModelUnavailable     unavailable       the packaged embedding model is not installed
        ├── SnapshotCorrupt      unavailable       an index snapshot fails its manifest checks;
        │                                          the worker rebuilds the index from Postgres
        └── ChunkingChanged      unavailable       the collection was re-created with other
                                                   chunking while a message was prepared

Each class also derives from the ``x0_common`` error with the same code, so the
responder maps it to a typed reply (and the gateway to an HTTP status) without a
translation table, and ``except x0_common.errors.InvalidInput`` catches ours too.
``message`` and ``details`` reach callers: they name keys, sizes and paths, never
document text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from x0_common import errors as common


class RagError(common.X0Error):
    """Base of every rag-domain error. It declares no ``code``: each error takes that of
    the ``x0_common`` error it also derives from (``internal`` where none)."""


class InvalidInput(RagError, common.InvalidInput):
    """A value in the request is wrong: a negative id, a vector of the wrong shape..."""


class InvalidFilter(InvalidInput):
    """A metadata filter does not follow the filter grammar (see ``domain.filters``)."""

    def __init__(self, reason: str, *, key: str | None = None) -> None:
        where = f"filter key {key!r}" if key is not None else "filter"
        details: dict[str, Any] = {"reason": reason}
        if key is not None:
            details["key"] = key
        super().__init__(f"{where}: {reason}", details=details)
        self.key = key
        self.reason = reason


class NotFound(RagError, common.NotFound):
    """The named collection or document does not exist."""


class Conflict(RagError, common.Conflict):
    """The request conflicts with what is stored (a name taken with other parameters)."""


class QuotaExceeded(RagError, common.QuotaExceeded):
    """The tenant holds as many collections (or documents) as its quota allows."""

    def __init__(self, quota: str, limit: int) -> None:
        super().__init__(
            f"the tenant's quota of {limit} {quota} is used up",
            details={"reason": "quota_exceeded", "quota": quota, "limit": limit},
        )
        self.quota = quota
        self.limit = limit


class TooLarge(RagError, common.TooLarge):
    """A request part above its documented limit; ``details`` names the limit."""


class Unavailable(RagError, common.Unavailable):
    """A resource is missing or not ready; the responder may retry."""


class ModelUnavailable(Unavailable):
    """The packaged embedding model could not be found or loaded.

    There is deliberately no fallback to random vectors: an index filled with
    them would answer every query with confident nonsense.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(
            f"embedding model unavailable at {path}: {reason}",
            details={"path": str(path), "reason": reason},
        )
        self.path = Path(path)
        self.reason = reason


class SnapshotCorrupt(Unavailable):
    """An index snapshot is missing, truncated or fails its checksum or parameters."""

    def __init__(self, directory: Path | str, reason: str) -> None:
        super().__init__(
            f"index snapshot in {directory} is unusable: {reason}",
            details={"directory": str(directory), "reason": reason},
        )
        self.directory = Path(directory)
        self.reason = reason


class VersionNotApplied(RagError, common.DeadlineExceeded):
    """This replica did not apply the version within the wait's bound."""

    def __init__(self, token: str, applied: int, waited_ms: int) -> None:
        partition = token.partition(":")[0]
        super().__init__(
            f"version {token} is not applied on this replica yet",
            details={
                "version": token,
                "applied": None if applied < 0 else f"{partition}:{applied}",
                "waited_ms": waited_ms,
            },
        )
        self.token = token


class SnapshotMissing(RagError):
    """The collection has no snapshot yet."""


class ChunkingChanged(Unavailable):
    """The collection was re-created with other chunking since the message was chunked.

    Transient on purpose: the responder's retry chunks the message again.
    """

    def __init__(self, collection: str) -> None:
        super().__init__(
            "the collection's chunking changed while the message was prepared",
            details={"reason": "chunking_changed", "collection": collection},
        )
