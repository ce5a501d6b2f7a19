"""This replica's vector indexes, kept in step with the index topic.

- :mod:`.manager` — :class:`IndexManager`: start-up, applying events, waits, snapshots.
- :mod:`.recovery` — start-up from snapshots, PostgreSQL and the log.
- :mod:`.applier` — the rules for applying ``Indexed`` events (idempotent).
- :mod:`.collection` — one collection's index, chunk metadata and applied versions.
- :mod:`.snapshots` — crash-safe snapshot generations on local disk.
- :mod:`.rebuild` — building indexes from PostgreSQL.
- :mod:`.versions` — version tokens, applied versions and bounded waits.

Importing this package loads hnswlib but not torch.
"""

from x0_rag.adapters.index.manager import IndexManager
from x0_rag.errors import VersionNotApplied

__all__ = ["IndexManager", "VersionNotApplied"]
