"""The telemetry service's own metrics (names shared with dashboards and alerts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from x0_common.metrics import LATENCY_BUCKETS

SERVICE = "telemetry"


class TelemetryMetrics:
    """Ingest outcomes, batch sizes and write time, nodes, node series and retention."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "x0_telemetry_events_total",
            "Telemetry events by type (heartbeat, metrics, unknown) and outcome "
            "(stored, duplicate, dead_lettered).",
            ["service", "type", "outcome"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "x0_telemetry_ingest_batch_size",
            "Events per ingest batch.",
            ["service"],
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=registry,
        )
        self.write_seconds = Histogram(
            "x0_telemetry_ingest_write_seconds",
            "Time to write one ingest batch to PostgreSQL and Redis.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.nodes = Gauge(
            "x0_telemetry_nodes",
            "Nodes per mesh and derived status (up, degraded, draining, down).",
            ["service", "mesh_id", "status"],
            registry=registry,
        )
        self.heartbeat_age = Gauge(
            "x0_telemetry_node_heartbeat_age_seconds",
            "Seconds since the node's last heartbeat (capped set of nodes).",
            ["service", "mesh_id", "node_id"],
            registry=registry,
        )
        self.link_quality = Gauge(
            "x0_telemetry_node_link_quality",
            "Mean link quality of the node's latest reported neighbours (capped set of nodes).",
            ["service", "mesh_id", "node_id"],
            registry=registry,
        )
        self.node_series_dropped = Counter(
            "x0_telemetry_node_series_dropped_total",
            "Node ids refused a node-labelled series by the cap.",
            ["service"],
            registry=registry,
        )
        self.partitions_dropped = Counter(
            "x0_telemetry_partitions_dropped_total",
            "Daily partitions dropped by retention.",
            ["service"],
            registry=registry,
        )
        # Series exist from the start, so dashboards and rate() see zeros, not gaps.
        self.node_series_dropped.labels(SERVICE)
        self.partitions_dropped.labels(SERVICE)
        for kind in ("heartbeat", "metrics"):
            for outcome in ("stored", "duplicate", "dead_lettered"):
                self.events.labels(SERVICE, kind, outcome)
        self.events.labels(SERVICE, "unknown", "dead_lettered")
