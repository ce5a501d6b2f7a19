"""Wiring only: broker, the ingest and query consumers, stores, background loops.

Two consumers share one broker: the ingest (a batch consumer of
``x0.telemetry.events``, one shared group: each event is written once) and the
queries (a Responder on ``x0.telemetry.requests``, one shared group: any replica
answers). Background: partition maintenance, the node gauges and the Kafka lag
exporter. Ready once both consumers hold partitions and PostgreSQL and Redis answer.
"""

from __future__ import annotations

from pathlib import Path

from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider

from x0_common.contract import Telemetry
from x0_common.events.telemetry import REQUESTS_TOPIC
from x0_common.kafka import Responder
from x0_common.kafka.broker import new_broker
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.postgres import create_pool, migrate
from x0_common.redis_client import create_redis
from x0_common.worker import build_worker_app
from x0_telemetry import handlers
from x0_telemetry.adapters.history import HistoryStore
from x0_telemetry.adapters.latest import LatestStore
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.gauges import NodeGauges
from x0_telemetry.ingest import Ingest
from x0_telemetry.lag import ConsumerLagExporter
from x0_telemetry.metrics import SERVICE, TelemetryMetrics
from x0_telemetry.retention import MaintenanceLoop, Partitions
from x0_telemetry.settings import TelemetrySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: TelemetrySettings, tracer_provider: TracerProvider | None = None
) -> AsgiFastStream:
    """Build the telemetry worker; pools open, migrations and maintenance run at start-up."""
    registry = new_registry()
    metrics = TelemetryMetrics(registry)
    deps = TelemetryDeps(settings=settings, metrics=metrics)
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
    handlers.register(queries, deps)
    ingest = Ingest(broker, deps, responder_metrics)
    gauges = NodeGauges(deps)
    lag = ConsumerLagExporter(
        kafka, registry, service=SERVICE, interval_seconds=settings.lag_interval_seconds
    )
    background: dict[str, MaintenanceLoop] = {}

    async def open_resources() -> None:
        pool = await create_pool(settings.common.postgres)
        deps.pool = pool
        await migrate(pool, "telemetry", MIGRATIONS)
        # A failed batch is re-read; queries retry Unavailable in the responder.
        deps.redis = create_redis(settings.common.redis, decode_responses=True)
        deps.history_store = HistoryStore(pool)
        deps.latest_store = LatestStore(deps.redis, ttl_seconds=settings.latest_ttl_seconds)
        deps.partitions_store = Partitions(
            pool,
            retention_days=settings.retention_days,
            ahead_days=settings.partitions_ahead_days,
            on_drop=lambda _: metrics.partitions_dropped.labels(SERVICE).inc(),
        )
        background["retention"] = MaintenanceLoop(
            deps.partitions, settings.maintenance_interval_seconds
        )
        await background["retention"].start()
        await gauges.start()
        await lag.start()

    async def close_resources() -> None:
        await lag.stop()
        await gauges.stop()
        if "retention" in background:
            await background["retention"].stop()
        if deps.redis is not None:
            await deps.redis.aclose()
        if deps.pool is not None:
            await deps.pool.close()

    async def postgres_answers() -> bool:
        assert deps.pool is not None
        return bool(await deps.pool.fetchval("SELECT 1"))

    async def redis_answers() -> bool:
        assert deps.redis is not None
        return bool(await deps.redis.ping())

    return build_worker_app(
        broker,
        registry=registry,
        operations=Telemetry.operations(),
        responders=[queries, ingest],
        checks={"postgres": postgres_answers, "redis": redis_answers},
        on_startup=[open_resources],
        after_shutdown=[close_resources],
    )
