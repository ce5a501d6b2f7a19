"""Telemetry worker settings, from ``X0_TELEMETRY_*`` (infrastructure from ``X0_*``)."""

from __future__ import annotations

from pydantic import Field

from x0_common.events.telemetry import (
    DEFAULT_MAX_CLOCK_SKEW_SECONDS,
    DEFAULT_RETENTION_DAYS,
    EVENTS_PARTITIONS,
)
from x0_common.principal import DEFAULT_TENANT, TenantId
from x0_common.settings import ServiceSettings, env_config


class TelemetrySettings(ServiceSettings):
    """What one telemetry worker replica needs to know."""

    model_config = env_config("X0_TELEMETRY_")

    port: int = 8003
    # Ingest (x0.telemetry.events): one shared group, each event is written once.
    ingest_group_id: str = "x0-telemetry-ingest"
    # Queries (x0.telemetry.requests): one shared group, any replica answers.
    query_group_id: str = "x0-telemetry-queries"
    # Partitions the topics are created with: they bound how many replicas share them.
    partitions: int = Field(default=EVENTS_PARTITIONS, ge=1)
    # Events per ingest batch (one PostgreSQL transaction and one Redis script call).
    ingest_max_batch: int = Field(default=1000, ge=1, le=10_000)
    # How long an idle ingest poll waits for the first event of a batch.
    ingest_batch_timeout_ms: int = Field(default=200, ge=1, le=10_000)
    # A node whose last heartbeat is older than this counts as down.
    down_timeout_seconds: float = Field(default=30.0, gt=0)
    # Latest state of a node in Redis lives this long after its last update.
    latest_ttl_seconds: int = Field(default=86_400, ge=1)
    # Events stamped further ahead of this worker's clock go to the DLQ.
    max_clock_skew_seconds: float = Field(default=DEFAULT_MAX_CLOCK_SKEW_SECONDS, ge=0)
    # History is kept this many days, in daily partitions dropped as a whole.
    retention_days: int = Field(default=DEFAULT_RETENTION_DAYS, ge=1, le=3650)
    # Daily partitions created ahead of today, so midnight never waits for maintenance.
    partitions_ahead_days: int = Field(default=2, ge=1, le=31)
    maintenance_interval_seconds: float = Field(default=3600.0, gt=0)
    # Node-labelled Prometheus series are capped so fake node ids cannot explode them.
    max_node_series: int = Field(default=500, ge=0)
    # Meshes with an x0_telemetry_nodes series of their own; the rest count as "_other".
    max_mesh_series: int = Field(default=100, ge=0)
    # How often the node gauges are recomputed from the latest state in Redis.
    gauges_refresh_seconds: float = Field(default=10.0, gt=0)
    # How often consumer lag, topic end offsets and DLQ depth are read from Kafka.
    lag_interval_seconds: float = Field(default=10.0, gt=0)
    # The tenant of events upstream producers publish straight to Kafka without a
    # principal (the gateway always sends its caller's).
    default_tenant: TenantId = DEFAULT_TENANT
    # Live nodes (an event within latest_ttl_seconds) one tenant may have; the events of
    # a node past it are dead-lettered as quota_exceeded.
    max_nodes_per_tenant: int = Field(default=100_000, ge=1)
