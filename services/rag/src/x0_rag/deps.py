"""What handlers need: built with the app, opened at start-up (typed fields)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from faststream.kafka import KafkaBroker

from x0_common.resources import Opened, Stores
from x0_rag.adapters.embedder import DynamicBatcher, Embedder
from x0_rag.adapters.index import IndexManager
from x0_rag.adapters.store import Quotas, RagStore
from x0_rag.metrics import SERVICE, RagMetrics
from x0_rag.settings import RagSettings


@dataclass(eq=False)
class RagDeps:
    """Shared by every handler; the stores, the model and the indexes exist once started."""

    settings: RagSettings
    metrics: RagMetrics
    # The PostgreSQL pool (schema ``rag``) and Redis: opened by the worker builder.
    stores: Stores
    # Publishes index events and collection-dropped markers.
    broker: KafkaBroker
    # The model behind a batcher, and this replica's indexes: opened by :meth:`open`.
    batcher = Opened[DynamicBatcher]("the embedding model")
    indexes = Opened[IndexManager]("the vector indexes")

    @property
    def store(self) -> RagStore:
        """Collections and documents on the pool, with the tenants' quotas; bind it to
        the caller's tenant (``store.of(context.tenant)``) before any use."""
        settings = self.settings
        quotas = Quotas(
            max_collections=settings.max_collections_per_tenant,
            max_documents=settings.max_documents_per_tenant,
        )
        return RagStore(self.stores.pool, quotas=quotas)

    async def open(self) -> None:
        """Load the model, then recover the indexes before any search can be answered."""
        # Loading the model fails loudly when it is missing: never a fallback.
        model = await asyncio.to_thread(Embedder, num_threads=self.settings.torch_threads)
        self.batcher = DynamicBatcher(
            model.embed,
            max_batch=self.settings.embed_max_batch,
            background_batch=self.settings.embed_background_batch,
            linger_ms=self.settings.embed_linger_ms,
            on_batch=self._observe_batch,
        )
        indexes = IndexManager(self.settings, pool=self.stores.pool, metrics=self.metrics)
        self.indexes = indexes
        await indexes.start()
        await indexes.wait_ready()

    async def close(self) -> None:
        """Snapshot and stop the indexes, drain the batcher."""
        if RagDeps.indexes.is_open(self):
            await self.indexes.stop(snapshot=True)
            del self.indexes
        if RagDeps.batcher.is_open(self):
            await self.batcher.close()
            del self.batcher

    async def indexes_ready(self) -> bool:
        """Readiness: the indexes follow the index topic and caught up at start-up."""
        return RagDeps.indexes.is_open(self) and self.indexes.ready

    def _observe_batch(self, texts: int, seconds: float) -> None:
        self.metrics.embed_batch_size.labels(SERVICE).observe(texts)
        self.metrics.embed_latency.labels(SERVICE).observe(seconds)
