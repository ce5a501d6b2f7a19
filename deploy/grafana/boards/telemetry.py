"""The telemetry worker: mesh events, node state and the history it keeps."""

from __future__ import annotations

from panels import Kinds, Panel, graph, number
from promql import WINDOW, Service

TITLE = "x0 / Telemetry"

EVENTS = "x0_telemetry_events_total"
NODES = "x0_telemetry_nodes"
NODE_KEYS = ("mesh_id", "status")


def panels() -> list[Panel]:
    s = Service("telemetry")
    k = Kinds(s)

    def nodes(status: str) -> str:
        # Every mesh exports all four statuses (zeros included), so this is never empty.
        return s.shared(NODES, NODE_KEYS, where=f'status="{status}"')

    # Both counters are created at 0 with the service, so no padding is needed.
    refused = s.rate("x0_telemetry_node_series_dropped_total")
    dropped = s.sel("x0_telemetry_partitions_dropped_total")
    partitions = f"sum(increase({dropped}[{WINDOW}]))"
    return [
        number("Nodes up", "Mesh nodes whose latest heartbeat is recent and up.", nodes("up")),
        number(
            "Nodes down",
            "Mesh nodes whose latest heartbeat is older than the timeout.",
            nodes("down"),
            red_from=1,
        ),
        number("Events/s", "Telemetry events ingested per second.", s.rate(EVENTS), unit="ops"),
        number(
            "Dead-lettered ratio",
            "Share of telemetry events sent to the DLQ.",
            s.share(EVENTS, 'outcome="dead_lettered"'),
            unit="percentunit",
            red_from=0.01,
        ),
        k.rates(
            "Events by type and outcome",
            "Events per second by type and outcome: stored, duplicate or dead_lettered.",
            EVENTS,
            "type",
            "outcome",
        ),
        graph(
            "Nodes by mesh and status",
            "Nodes per mesh by derived status: up, degraded, draining or down.",
            (s.shared(NODES, NODE_KEYS, *NODE_KEYS), "{{mesh_id}} {{status}}"),
        ),
        k.spread(
            "Ingest batch size",
            "Events per ingest batch: mean and 95th percentile.",
            "x0_telemetry_ingest_batch_size",
        ),
        k.latency(
            "Batch write latency",
            "One batch's PostgreSQL and Redis write, p50 and p99.",
            "x0_telemetry_ingest_write_seconds",
        ),
        k.gauges(
            "Heartbeat age per node",
            "Seconds since each node's latest heartbeat (node series are capped).",
            "x0_telemetry_node_heartbeat_age_seconds",
            "mesh_id",
            "node_id",
            op="max",
            unit="s",
        ),
        k.gauges(
            "Link quality per node",
            "Mean neighbour link quality of each node's latest metrics, 0 to 1.",
            "x0_telemetry_node_link_quality",
            "mesh_id",
            "node_id",
            op="min",
            unit="percentunit",
        ),
        graph(
            "Node series refused by the cap",
            "Node-labelled series refused per second because the cap was reached, e.g. "
            "by a flood of fake node ids (zero while none).",
            (refused, "refused"),
            unit="ops",
        ),
        graph(
            "Partitions dropped by retention",
            "History partitions the retention job dropped, per window (zero while none).",
            (partitions, "dropped"),
        ),
        *k.responder(),
    ]
