"""Wiring only: broker, responders, the model, the indexes and operational endpoints.

Two responders share one broker: queries (``x0.rag.requests``, one shared group: any
replica answers) and the ingest writer (``x0.rag.ingest``, one shared group: each
message is written once). Every replica's index manager follows ``x0.rag.index``
with no group at all, so every replica holds every collection's full index.
"""

from __future__ import annotations

import os
from pathlib import Path

from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider

from x0_common.contract import Rag
from x0_common.events.rag import REQUESTS_TOPIC
from x0_common.resources import Stores
from x0_common.worker import Wiring, build_worker_app
from x0_rag.deps import RagDeps
from x0_rag.handlers import collections, search
from x0_rag.handlers.ingest import writer_responder
from x0_rag.metrics import SERVICE, RagMetrics
from x0_rag.settings import RagSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: RagSettings, tracer_provider: TracerProvider | None = None
) -> AsgiFastStream:
    """Build the RAG worker; the stores, the model and the indexes open at start-up."""
    # Thread counts on purpose: BLAS and torch would otherwise fight over the cores.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    wiring = Wiring.of(SERVICE, settings.common, tracer_provider)
    deps = RagDeps(
        settings=settings,
        metrics=RagMetrics(wiring.registry),
        stores=Stores(settings.common, schema="rag", migrations=MIGRATIONS),
        broker=wiring.broker,
    )
    queries = wiring.responder(
        REQUESTS_TOPIC, group_id=settings.query_group_id, partitions=settings.partitions
    )
    collections.register(queries, deps)
    search.register(queries, deps)
    writer = writer_responder(wiring.broker, deps, wiring.responder_metrics)
    return build_worker_app(
        wiring,
        operations=Rag.operations(),
        responders=[queries, writer],
        stores=deps.stores,
        checks={"indexes": deps.indexes_ready},
        on_startup=[deps.open],
        after_shutdown=[deps.close],
    )
