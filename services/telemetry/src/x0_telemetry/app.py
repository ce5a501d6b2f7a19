"""Wiring only: broker, the ingest and query consumers, dependencies, background jobs.

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
from x0_common.resources import Stores
from x0_common.worker import Periodic, Wiring, build_worker_app
from x0_telemetry.adapters.lag import ConsumerLagExporter
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.handlers import queries
from x0_telemetry.handlers.gauges import NodeGauges
from x0_telemetry.handlers.ingest import Ingest
from x0_telemetry.metrics import SERVICE, TelemetryMetrics
from x0_telemetry.settings import TelemetrySettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: TelemetrySettings, tracer_provider: TracerProvider | None = None
) -> AsgiFastStream:
    """Build the telemetry worker; stores open, migrations and maintenance run at start-up."""
    wiring = Wiring.of(SERVICE, settings.common, tracer_provider)
    deps = TelemetryDeps(
        settings=settings,
        metrics=TelemetryMetrics(wiring.registry),
        # Text replies: the latest state is read as strings. A failed batch is read again;
        # queries retry Unavailable in the responder.
        stores=Stores(
            settings.common, schema="telemetry", migrations=MIGRATIONS, decode_responses=True
        ),
    )
    responder = wiring.responder(
        REQUESTS_TOPIC, group_id=settings.query_group_id, partitions=settings.partitions
    )
    queries.register(responder, deps)
    ingest = Ingest(wiring.broker, deps, wiring.responder_metrics)
    gauges = NodeGauges(deps)
    lag = ConsumerLagExporter(
        wiring.kafka,
        wiring.registry,
        service=SERVICE,
        interval_seconds=settings.lag_interval_seconds,
    )

    async def maintain_partitions() -> None:
        await deps.partitions.maintain()

    return build_worker_app(
        wiring,
        operations=Telemetry.operations(),
        responders=[responder, ingest],
        stores=deps.stores,
        on_startup=[deps.open, lag.start],
        background=[
            Periodic(
                "telemetry-retention",
                maintain_partitions,
                settings.maintenance_interval_seconds,
                first=True,
            ),
            Periodic(
                "telemetry-gauges", gauges.refresh, settings.gauges_refresh_seconds, first=True
            ),
        ],
        after_shutdown=[lag.stop],
    )
