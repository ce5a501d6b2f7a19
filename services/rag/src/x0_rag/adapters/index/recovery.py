"""Start-up: bring a replica's indexes back from snapshots, PostgreSQL and the index log.

1. Record the index topic's end offsets ``E`` and first retained offsets, *before*
   reading PostgreSQL. The writer commits rows before publishing their event, so
   every event below ``E`` is already in what PostgreSQL shows next.
2. Load each collection's current snapshot, checked. Missing, corrupt
   (``SnapshotCorrupt``) or resuming outside the retained log (retention passed it,
   or the topic was recreated): that collection is rebuilt.
3. In one ``REPEATABLE READ`` transaction read the collections, the writer's
   ``rag.ingest_progress`` and the chunks of every collection to rebuild. A snapshot
   of a collection PostgreSQL no longer has is deleted.
4. The replica's applied versions start at the element-wise minimum over the loaded
   snapshots (and PostgreSQL's progress if anything was rebuilt or nothing loaded);
   reading resumes at the element-wise minimum of the snapshots' resume offsets
   (and ``E``). Events a collection already holds are skipped by its own versions,
   so starting early is harmless and starting late is impossible.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from x0_rag.adapters.index.collection import CollectionIndex
from x0_rag.adapters.index.rebuild import read_postgres
from x0_rag.adapters.index.snapshots import SnapshotState, SnapshotStore
from x0_rag.errors import SnapshotCorrupt, SnapshotMissing

if TYPE_CHECKING:
    import asyncpg

logger = logging.getLogger(__name__)


@dataclass
class Recovered:
    """The state a replica starts following from."""

    collections: dict[str, CollectionIndex]
    snapshots: dict[str, SnapshotState]
    applied: dict[int, int]
    resume: dict[int, int]
    rebuilt: list[str]


async def recover(
    store: SnapshotStore,
    pool: asyncpg.Pool,
    *,
    ingest_topic: str,
    partitions: list[int],
    log_start: Mapping[int, int],
    ends: Mapping[int, int],
) -> Recovered:
    """Steps 2-4 above (the caller recorded ``log_start`` and ``ends`` first)."""
    loaded = await _load_snapshots(store, partitions, log_start, ends)
    source = await read_postgres(pool, ingest_topic=ingest_topic, rebuild_unless=set(loaded))
    for name in sorted(set(loaded) - set(source.params)):
        logger.info("deleting the snapshot of a deleted collection", extra={"collection": name})
        await asyncio.to_thread(store.delete, name)
        del loaded[name]
    states = [state for _, state in loaded.values()]
    from_postgres = bool(source.rebuilt) or not states
    applied_candidates = [state.applied for state in states]
    resume_candidates = [state.resume for state in states]
    if from_postgres:
        applied_candidates.append(source.applied)
        resume_candidates.append(dict(ends))
    collections = {name: collection for name, (collection, _) in loaded.items()}
    collections.update(source.rebuilt)
    recovered = Recovered(
        collections=collections,
        snapshots={name: state for name, (_, state) in loaded.items()},
        applied=_minimum(applied_candidates, partitions, lambda _: -1),
        resume=_minimum(resume_candidates, partitions, lambda p: log_start.get(p, 0)),
        rebuilt=sorted(source.rebuilt),
    )
    logger.info(
        "index state recovered",
        extra={
            "from_snapshots": sorted(loaded),
            "rebuilt": recovered.rebuilt,
            "resume": recovered.resume,
        },
    )
    return recovered


async def _load_snapshots(
    store: SnapshotStore,
    partitions: list[int],
    log_start: Mapping[int, int],
    ends: Mapping[int, int],
) -> dict[str, tuple[CollectionIndex, SnapshotState]]:
    loaded = {}
    for name in await asyncio.to_thread(store.collections):
        try:
            collection, state = await asyncio.to_thread(store.load, name)
        except SnapshotMissing:
            logger.info("no snapshot; rebuilding from postgres", extra={"collection": name})
            continue
        except (SnapshotCorrupt, OSError, ValueError) as error:
            logger.warning(
                "snapshot unusable; rebuilding from postgres",
                extra={"collection": name, "reason": str(error)},
            )
            continue
        outside = [
            p
            for p in partitions
            if not log_start[p] <= state.resume.get(p, log_start[p]) <= ends[p]
        ]
        if outside:
            logger.warning(
                "snapshot resumes outside the retained index log; rebuilding from postgres",
                extra={"collection": name, "partitions": outside},
            )
            continue
        loaded[name] = (collection, state)
    return loaded


def _minimum(
    candidates: Sequence[Mapping[int, int]], keys: Iterable[int], missing: Callable[[int], int]
) -> dict[int, int]:
    """Per key, the smallest value among the candidates (``missing(key)`` where one lacks it)."""
    every = set(keys).union(*candidates)
    return {key: min(c.get(key, missing(key)) for c in candidates) for key in sorted(every)}
