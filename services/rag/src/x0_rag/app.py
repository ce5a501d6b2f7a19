"""Wiring only: broker, responders, the model, the indexes and operational endpoints.

Two responders share one broker: queries (``x0.rag.requests``, one shared group: any
replica answers) and the ingest writer (``x0.rag.ingest``, one shared group: each
message is written once). Every replica's index manager follows ``x0.rag.index``
with no group at all, so every replica holds every collection's full index.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider

from x0_common.contract import Rag
from x0_common.events.rag import REQUESTS_TOPIC
from x0_common.kafka import Responder
from x0_common.kafka.broker import new_broker
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.postgres import create_pool, migrate
from x0_common.redis_client import create_redis
from x0_common.worker import build_worker_app
from x0_rag.adapters.embedder import DynamicBatcher, Embedder
from x0_rag.deps import RagDeps
from x0_rag.handlers import collections, search
from x0_rag.handlers.ingest import writer_responder
from x0_rag.index.manager import IndexManager
from x0_rag.metrics import SERVICE, RagMetrics
from x0_rag.settings import RagSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: RagSettings, tracer_provider: TracerProvider | None = None
) -> AsgiFastStream:
    """Build the RAG worker; the model, pools and indexes open at start-up."""
    # Thread counts on purpose: BLAS and torch would otherwise fight over the cores.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    registry = new_registry()
    metrics = RagMetrics(registry)
    deps = RagDeps(settings=settings, metrics=metrics)
    kafka = settings.common.kafka
    broker = new_broker(kafka, tracer_provider=tracer_provider)
    responder_metrics = ResponderMetrics(registry, SERVICE)
    queries = Responder(
        broker,
        topic=REQUESTS_TOPIC,
        group_id=settings.query_group_id,
        settings=kafka,
        metrics=responder_metrics,
        partitions=settings.partitions,
    )
    collections.register(queries, deps)
    search.register(queries, deps)
    writer = writer_responder(broker, deps, responder_metrics)

    def observe_batch(texts: int, seconds: float) -> None:
        metrics.embed_batch_size.labels(SERVICE).observe(texts)
        metrics.embed_latency.labels(SERVICE).observe(seconds)

    async def open_resources() -> None:
        pool = await create_pool(settings.common.postgres)
        await migrate(pool, "rag", MIGRATIONS)
        deps.resources["pool"] = pool
        deps.resources["redis"] = create_redis(settings.common.redis)
        # Loading the model fails loudly when it is missing: never a fallback.
        model = await asyncio.to_thread(Embedder, num_threads=settings.torch_threads)
        deps.resources["batcher"] = DynamicBatcher(
            model.embed,
            max_batch=settings.embed_max_batch,
            linger_ms=settings.embed_linger_ms,
            on_batch=observe_batch,
        )
        deps.resources["producer"] = broker
        indexes = IndexManager(settings, pool=pool, metrics=metrics)
        deps.resources["indexes"] = indexes
        # Recover (snapshots, else PostgreSQL) before any search can be answered.
        await indexes.start()
        await indexes.wait_ready()

    async def close_resources() -> None:
        if "indexes" in deps.resources:
            await deps.resources["indexes"].stop(snapshot=True)
        if "batcher" in deps.resources:
            await deps.resources["batcher"].close()
        if "redis" in deps.resources:
            await deps.resources["redis"].aclose()
        if "pool" in deps.resources:
            await deps.resources["pool"].close()

    async def postgres_answers() -> bool:
        return bool(await deps.resources["pool"].fetchval("SELECT 1"))

    async def redis_answers() -> bool:
        return bool(await deps.resources["redis"].ping())

    async def indexes_ready() -> bool:
        return bool(deps.resources["indexes"].ready)

    return build_worker_app(
        broker,
        registry=registry,
        operations=Rag.operations(),
        responders=[queries, writer],
        checks={"postgres": postgres_answers, "redis": redis_answers, "indexes": indexes_ready},
        on_startup=[open_resources],
        after_shutdown=[close_resources],
    )
