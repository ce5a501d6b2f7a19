"""The replica's collection indexes (vectors and words), kept in step with ``x0.rag.index``.

Every replica reads the whole index topic with a :class:`~x0_common.kafka.follower.LogFollower`
(no consumer group) and applies its ``Indexed`` events (rules in :mod:`.applier`);
start-up is :mod:`.recovery`. Batches are applied one at a time, under one lock, in a
worker thread (hnswlib and JSON decoding are CPU work); snapshots take the same lock,
so each one is consistent with the offsets and versions it records. Searches run in
worker threads beside applies:
``VectorIndex`` serialises every hnswlib call itself.

Snapshots are written every ``snapshot_interval_seconds``: a changed collection gets a
new generation; an unchanged one only newer resume offsets.

Collections are keyed by ``qualified(tenant, name)`` (the bare name for the default
tenant, ``tenant/name`` otherwise; also their metrics label). A search sees one
tenant's collections only: :meth:`IndexManager.of` is that tenant's view
(:class:`~x0_rag.domain.ports.Indexes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy.typing as npt

from x0_common.events.rag import INDEX_TOPIC, INGEST_TOPIC
from x0_common.kafka.clients import ensure_topics
from x0_common.kafka.follower import LogFollower
from x0_common.principal import qualified
from x0_common.settings import KafkaSettings
from x0_rag.adapters.index import applier
from x0_rag.adapters.index.collection import CollectionIndex
from x0_rag.adapters.index.rebuild import chunk_texts, collection_params
from x0_rag.adapters.index.recovery import Recovered, recover
from x0_rag.adapters.index.snapshots import SnapshotState, SnapshotStore
from x0_rag.adapters.index.versions import AppliedVersions, parse_token
from x0_rag.adapters.memory import release_memory
from x0_rag.domain.filters import MetadataFilter
from x0_rag.domain.keywords import KeywordQuery
from x0_rag.errors import InvalidInput, Unavailable
from x0_rag.metrics import SERVICE, RagMetrics
from x0_rag.settings import RagSettings

if TYPE_CHECKING:
    import asyncpg

logger = logging.getLogger(__name__)

METRICS_INTERVAL_SECONDS = 5.0


class IndexManager:
    """Per-collection vector indexes of one replica, fed by the index topic."""

    def __init__(
        self,
        settings: RagSettings,
        *,
        pool: asyncpg.Pool,
        metrics: RagMetrics,
        topic: str = INDEX_TOPIC,
        ingest_topic: str = INGEST_TOPIC,
        kafka: KafkaSettings | None = None,
        snapshot_root: Path | None = None,
    ) -> None:
        """Topics and ``snapshot_root`` are parameters so that tests can isolate them
        (``ingest_topic`` names the writer's progress rows a rebuild reads)."""
        self.topic = topic
        self.ingest_topic = ingest_topic
        self._settings = settings
        self._kafka = kafka or settings.common.kafka
        self._pool = pool
        self._metrics = metrics
        self._store = SnapshotStore(snapshot_root or settings.snapshot_dir / settings.replica_id)
        self._collections: dict[str, CollectionIndex] = {}
        self._snapshots: dict[str, SnapshotState] = {}
        self._applied = AppliedVersions()
        self._positions: dict[int, int] = {}
        self._lock = asyncio.Lock()
        self._follower = LogFollower(self._kafka, topic=topic, handler=self._on_records)
        self._catch_up_to: dict[int, int] = {}
        self._caught_up = False
        self._started_at = time.time()
        self._last_snapshot = time.monotonic()
        self._maintenance: asyncio.Task[None] | None = None
        self.rebuilt: list[str] = []

    # -- life cycle ---------------------------------------------------------------

    async def start(self) -> None:
        """Recover (snapshots, PostgreSQL), then follow the index topic from where they end."""
        await ensure_topics(self._kafka, [self.topic], partitions=self._settings.ingest_partitions)
        await self._follower.open()
        try:
            log_start = await self._follower.beginning_offsets()
            ends = await self._follower.end_offsets()  # before PostgreSQL is read
            recovered = await recover(
                self._store,
                self._pool,
                ingest_topic=self.ingest_topic,
                partitions=self._follower.partitions,
                log_start=log_start,
                ends=ends,
            )
            self._install(recovered, ends)
            await self._follower.start(recovered.resume)
        except BaseException:
            await self._follower.stop()
            raise
        self._last_snapshot = time.monotonic()
        self._maintenance = asyncio.create_task(self._maintain(), name="x0-rag-index-maintenance")

    def _install(self, recovered: Recovered, ends: dict[int, int]) -> None:
        self._collections = recovered.collections
        self._snapshots = recovered.snapshots
        self._applied = AppliedVersions(recovered.applied)
        self._positions = dict(recovered.resume)
        self._catch_up_to = ends
        self.rebuilt = recovered.rebuilt
        for name, collection in self._collections.items():
            self._metrics.index_size.labels(SERVICE, name).set(len(collection))

    async def stop(self, *, snapshot: bool = False) -> None:
        """Stop following (a batch in progress finishes); optionally snapshot first."""
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
            self._maintenance = None
        await self._follower.stop()
        if snapshot:
            await self.snapshot()

    @property
    def ready(self) -> bool:
        """Following, and caught up with the log as it was at start-up."""
        if not self._follower.running:
            return False
        if not self._caught_up:
            positions = self._positions
            self._caught_up = all(positions.get(p, 0) >= o for p, o in self._catch_up_to.items())
        return self._caught_up

    async def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until :attr:`ready` (``TimeoutError`` after ``timeout`` seconds)."""
        await self._follower.wait_for_positions(self._catch_up_to, timeout)

    # -- reads ----------------------------------------------------------------------

    def of(self, tenant: str) -> TenantIndexes:
        """``tenant``'s collections (the search's :class:`~x0_rag.domain.ports.Indexes`)."""
        return TenantIndexes(self, tenant)

    def collection(self, name: str) -> CollectionIndex | None:
        """The collection's index on this replica, if it has one yet."""
        return self._collections.get(name)

    def names(self) -> list[str]:
        """Collections with an index here."""
        return sorted(self._collections)

    def applied(self) -> dict[int, int]:
        """Per ingest partition, the highest source offset applied."""
        return self._applied.as_dict()

    def positions(self) -> dict[int, int]:
        """Per index partition, the next offset to apply."""
        return dict(self._positions)

    def version_key(self, name: str) -> str:
        """What this replica applied to ``name`` (a cache key part: changes with the index)."""
        collection = self._collections.get(name)
        return "-" if collection is None else collection.version_key()

    async def search(
        self,
        name: str,
        vector: npt.ArrayLike,
        k: int,
        *,
        ef: int | None = None,
        where: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, cosine similarity)``, best first; [] without an index."""
        collection = self._collections.get(name)
        if collection is None or len(collection) == 0:
            return []
        return await asyncio.to_thread(
            collection.search, vector, k, ef=ef, where=where or MetadataFilter()
        )

    async def keyword(
        self, name: str, query: str, k: int, *, where: MetadataFilter | None = None
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, BM25 score)``, best first; [] without an index."""
        collection = self._collections.get(name)
        if collection is None or len(collection.lexical) == 0:
            return []
        return await asyncio.to_thread(
            collection.keyword, KeywordQuery.parse(query), k, where=where or MetadataFilter()
        )

    async def wait_for(self, token: str, timeout: float) -> None:
        """Return once ingest version ``token`` is applied here.

        ``InvalidInput`` for a token naming no partition of the index topic,
        ``Unavailable`` before start-up, ``VersionNotApplied`` (504) after ``timeout``.
        """
        partition, _ = parse_token(token)
        if not self._follower.partitions:
            raise Unavailable("the index is starting")
        if partition not in self._follower.partitions:
            raise InvalidInput(
                "the version names a partition the ingest log does not have",
                details={"version": token, "partitions": len(self._follower.partitions)},
            )
        await self._applied.wait_for(token, timeout)

    # -- applying -------------------------------------------------------------------

    async def _on_records(self, records: list[Any]) -> None:
        decoded = await asyncio.to_thread(applier.decode, records)
        async with self._lock:
            fresh = applier.new_collections(decoded, self._collections)
            params = await collection_params(self._pool, fresh) if fresh else {}
            texts = await chunk_texts(self._pool, applier.upserted_ids(decoded))
            outcome = await asyncio.to_thread(
                applier.apply_batch,
                decoded,
                self._collections,
                self._applied.as_dict(),
                params,
                texts,
            )
            for name in outcome.dropped:
                self._snapshots.pop(name, None)
                await asyncio.to_thread(self._store.delete, name)
                for gauge in (self._metrics.index_size, self._metrics.snapshot_age):
                    with contextlib.suppress(KeyError):  # never set for this collection
                        gauge.remove(SERVICE, name)
            if outcome.dropped:
                # Freed is not returned: hand the dropped indexes' memory back to the OS.
                await asyncio.to_thread(release_memory)
            for name in outcome.touched:
                if (collection := self._collections.get(name)) is not None:
                    self._metrics.index_size.labels(SERVICE, name).set(len(collection))
            self._positions.update(outcome.positions)
            for partition, offset in outcome.advanced:
                self._applied.advance(partition, offset)

    # -- snapshots and metrics --------------------------------------------------------

    async def snapshot(self) -> list[str]:
        """Snapshot every collection now; returns those written in full (changed ones)."""
        written = []
        for name in list(self._collections):
            async with self._lock:
                collection = self._collections.get(name)
                if collection is None:
                    continue
                try:
                    state, full = await asyncio.to_thread(
                        self._store.write,
                        collection,
                        self._snapshots.get(name),
                        resume=dict(self._positions),
                        applied=self._applied.as_dict(),
                    )
                except OSError:
                    logger.exception("snapshot failed", extra={"collection": name})
                    continue
                self._snapshots[name] = state
                if full:
                    written.append(name)
        self._last_snapshot = time.monotonic()
        return written

    async def refresh_metrics(self) -> None:
        """Replication lag and snapshot ages (also done every few seconds in the background)."""
        if self._follower.running:
            self._metrics.replication_lag.labels(SERVICE).set(await self._follower.lag())
        now = time.time()
        for name in list(self._collections):
            state = self._snapshots.get(name)
            saved = state.saved_at if state is not None else self._started_at
            self._metrics.snapshot_age.labels(SERVICE, name).set(max(0.0, now - saved))

    async def _maintain(self) -> None:
        interval = self._settings.snapshot_interval_seconds
        while True:
            await asyncio.sleep(min(METRICS_INTERVAL_SECONDS, interval))
            try:
                if time.monotonic() - self._last_snapshot >= interval:
                    await self.snapshot()
                await self.refresh_metrics()
            except Exception:
                # Never let bookkeeping kill the loop; the age gauge shows it is stuck.
                logger.exception("index maintenance failed")


class TenantIndexes:
    """One tenant's view of the replica's indexes: names are the tenant's collection
    names; another tenant's collection of the same name is not visible."""

    def __init__(self, manager: IndexManager, tenant: str) -> None:
        self._manager = manager
        self.tenant = tenant

    def collection(self, name: str) -> CollectionIndex | None:
        """The tenant's collection ``name`` on this replica, if indexed yet."""
        return self._manager.collection(qualified(self.tenant, name))

    def version_key(self, name: str) -> str:
        """What this replica applied to the tenant's ``name``."""
        return self._manager.version_key(qualified(self.tenant, name))

    async def search(
        self,
        name: str,
        vector: npt.ArrayLike,
        k: int,
        *,
        ef: int | None = None,
        where: MetadataFilter | None = None,
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, cosine similarity)`` in the tenant's ``name``."""
        return await self._manager.search(
            qualified(self.tenant, name), vector, k, ef=ef, where=where
        )

    async def keyword(
        self, name: str, query: str, k: int, *, where: MetadataFilter | None = None
    ) -> list[tuple[int, float]]:
        """Up to ``k`` ``(chunk id, BM25 score)`` in the tenant's ``name``."""
        return await self._manager.keyword(qualified(self.tenant, name), query, k, where=where)

    async def wait_for(self, token: str, timeout: float) -> None:
        """Versions are the ingest log's, shared by every tenant."""
        await self._manager.wait_for(token, timeout)
