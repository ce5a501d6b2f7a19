"""The telemetry service's own metrics (names shared with dashboards and alerts)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from x0_common.metrics import MetricFactory

SERVICE = "telemetry"


class TelemetryMetrics:
    """Ingest outcomes, batch sizes and write time, nodes, node series and retention."""

    def __init__(self, registry: CollectorRegistry) -> None:
        declare = MetricFactory(registry)
        self.events = declare.counter(
            "x0_telemetry_events_total",
            "Telemetry events by type (heartbeat, metrics, unknown) and outcome "
            "(stored, duplicate, dead_lettered).",
            "type",
            "outcome",
        )
        self.batch_size = declare.histogram(
            "x0_telemetry_ingest_batch_size",
            "Events per ingest batch.",
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
        )
        self.write_seconds = declare.histogram(
            "x0_telemetry_ingest_write_seconds",
            "Time to write one ingest batch to PostgreSQL and Redis.",
        )
        self.nodes = declare.gauge(
            "x0_telemetry_nodes",
            "Nodes per mesh and derived status (up, degraded, draining, down).",
            "mesh_id",
            "status",
        )
        self.heartbeat_age = declare.gauge(
            "x0_telemetry_node_heartbeat_age_seconds",
            "Seconds since the node's last heartbeat (capped set of nodes).",
            "mesh_id",
            "node_id",
        )
        self.link_quality = declare.gauge(
            "x0_telemetry_node_link_quality",
            "Mean link quality of the node's latest reported neighbours (capped set of nodes).",
            "mesh_id",
            "node_id",
        )
        self.node_series_dropped = declare.counter(
            "x0_telemetry_node_series_dropped_total",
            "Node ids refused a node-labelled series by the cap.",
        )
        self.partitions_dropped = declare.counter(
            "x0_telemetry_partitions_dropped_total", "Daily partitions dropped by retention."
        )
        # Series exist from the start, so dashboards and rate() see zeros, not gaps.
        self.node_series_dropped.labels(SERVICE)
        self.partitions_dropped.labels(SERVICE)
        for kind in ("heartbeat", "metrics"):
            for outcome in ("stored", "duplicate", "dead_lettered"):
                self.events.labels(SERVICE, kind, outcome)
        self.events.labels(SERVICE, "unknown", "dead_lettered")
