"""The x0 Grafana dashboards as code: one per service and a Kafka overview.

Run ``python3 -m uv run --frozen python deploy/grafana/generate.py`` after a change
and commit the JSON it writes to ``deploy/grafana/dashboards/`` (``--check`` only
reports stale files). tests/deploy/test_dashboards.py fails when the two differ,
and the live-Prometheus test evaluates every query from :func:`panel_queries`.

Query rules:
- only ``x0_`` metric names the services declare, every selector filtered by ``service``;
- no Grafana variable but ``$__rate_interval`` (the live test substitutes a window);
- a panel about something bad (5xx, failures, timeouts, dead letters) shows a zero
  series while nothing bad happened, so that an empty panel always means a broken
  query. Where the bad outcome is a label of a counter of all traffic,
  :meth:`Service.share` takes ``part or 0 * whole`` over that one metric; where a
  counter appears only on its first event, :func:`zero_until_seen` pads it with zeros
  shaped like a traffic metric of the same service. Such a counter's own name is then
  proven by the unit test (declared in source) and by Prometheus's metadata, which
  lists a family before its first sample; :func:`metric_names` lists the names.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

OUT_DIR = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
WINDOW = "$__rate_interval"
GRID_WIDTH = 24

Json = dict[str, Any]
Query = tuple[str, str]  # (expr, legend)


# -- PromQL -------------------------------------------------------------------


def _sum(by: Sequence[str]) -> str:
    return f"sum by ({', '.join(by)}) " if by else "sum"


class Service:
    """Query builders whose selectors all carry ``service="<name>"``.

    A plain class, not a dataclass: the live test loads this file with importlib
    without registering it in sys.modules, which dataclasses need.
    """

    def __init__(self, name: str) -> None:
        self.name = name

    def sel(self, metric: str, where: str = "") -> str:
        """``metric{service="...",<where>}``; ``where`` holds extra matchers."""
        extra = f",{where}" if where else ""
        return f'{metric}{{service="{self.name}"{extra}}}'

    def gauge(self, metric: str, *by: str, op: str = "sum") -> str:
        """A gauge aggregated over replicas (``op``) by ``by``."""
        grouping = f" by ({', '.join(by)}) " if by else ""
        return f"{op}{grouping}({self.sel(metric)})"

    def rate(self, metric: str, *by: str, where: str = "") -> str:
        """A counter's per-second rate, summed by ``by``."""
        return f"{_sum(by)}(rate({self.sel(metric, where)}[{WINDOW}]))"

    def share(self, metric: str, part: str, *by: str) -> str:
        """The fraction of a counter's rate that also matches ``part``; 0 until one does."""
        whole = self.rate(metric, *by)
        return f"({self.rate(metric, *by, where=part)} or 0 * {whole}) / {whole}"

    def quantile(self, q: float, metric: str, *by: str) -> str:
        """A percentile from a histogram's buckets."""
        return f"histogram_quantile({q}, {self.rate(f'{metric}_bucket', 'le', *by)})"

    def shared(self, metric: str, keys: Sequence[str], *by: str, where: str = "") -> str:
        """A gauge every replica exports in full: one copy per ``keys``, summed by ``by``.

        Replicas that each read the whole state (telemetry's node gauges, the lag
        exporter) export the same series; ``max by (keys)`` counts each once.
        """
        return f"{_sum(by)}(max by ({', '.join(keys)}) ({self.sel(metric, where)}))"

    def mean(self, metric: str) -> str:
        """A histogram's mean observation over the window."""
        return f"{self.rate(f'{metric}_sum')} / {self.rate(f'{metric}_count')}"


def zero_until_seen(expr: str, like: str, *on: str) -> str:
    """``expr``, or zeros shaped like ``like`` (matched ``on`` labels) while it has no series.

    For counters that appear only with their first event: ``like`` is a metric present
    whenever the service has traffic, so the panel shows 0 rather than nothing.
    """
    return f"{expr} or on ({', '.join(on)}) 0 * {like}"


# -- panels -------------------------------------------------------------------


def _target(expr: str, legend: str, ref: str) -> Json:
    return {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}


def ts(title: str, description: str, *queries: Query, unit: str = "short", width: int = 12) -> Json:
    """A graph of one or more (expr, legend) queries."""
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [_target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(queries)],
        "fieldConfig": {
            "defaults": {
                "unit": unit,
                "custom": {"drawStyle": "line", "fillOpacity": 10, "showPoints": "never"},
            },
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "gridPos": {"w": width, "h": 8},
    }


def stat(
    title: str, description: str, expr: str, *, unit: str = "short", red_from: float | None = None
) -> Json:
    """One number; red from ``red_from`` on when given."""
    steps: list[Json] = [{"color": "green", "value": None}]
    if red_from is not None:
        steps.append({"color": "red", "value": red_from})
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [_target(expr, "", "A")],
        "fieldConfig": {
            "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
            "overrides": [],
        },
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
        },
        "gridPos": {"w": 6, "h": 4},
    }


def dashboard(uid: str, title: str, tag: str, panels: Sequence[Json]) -> Json:
    """Lay the panels out left to right, wrapping at the grid's width, and number them."""
    x = y = row_height = 0
    laid_out = []
    for number, panel in enumerate(panels, start=1):
        grid = panel["gridPos"]
        if x + grid["w"] > GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append({"id": number, **panel, "gridPos": {**grid, "x": x, "y": y}})
        x += grid["w"]
        row_height = max(row_height, grid["h"])
    return {
        "uid": uid,
        "title": title,
        "tags": ["x0", tag],
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "utc",
        "links": [{"title": "x0", "type": "dashboards", "tags": ["x0"], "asDropdown": True}],
        "annotations": {"list": []},
        "templating": {"list": []},
        "panels": laid_out,
    }


def responder_panels(s: Service) -> list[Json]:
    """What every worker's responder counts: messages by outcome and handler latency."""
    handled = s.rate("x0_responder_handled_total", "type", "outcome")
    handler_p99 = s.quantile(0.99, "x0_responder_handler_duration_seconds", "type")
    return [
        ts(
            "Handled messages by type and outcome",
            "Messages handled per second; outcome is ok or the error code replied.",
            (handled, "{{type}} {{outcome}}"),
            unit="ops",
        ),
        ts(
            "Handler p99 by type",
            "Time spent in the handler, 99th percentile, per message type.",
            (handler_p99, "{{type}}"),
            unit="s",
        ),
    ]


# -- the dashboards -----------------------------------------------------------

HTTP = "x0_http_requests_total"
HTTP_SECONDS = "x0_http_request_duration_seconds"
FIVE_XX = 'status=~"5.."'


def gateway() -> Json:
    s = Service("gateway")
    by_type = s.rate("x0_requester_requests_total", "type")
    timeouts = zero_until_seen(s.rate("x0_requester_timeouts_total", "type"), by_type, "type")
    rejected = zero_until_seen(s.rate("x0_requester_rejected_total", "type"), by_type, "type")
    reply = "x0_requester_latency_seconds"
    return dashboard(
        "x0-gateway",
        "x0 / Gateway",
        "gateway",
        [
            stat("Requests/s", "HTTP requests answered per second.", s.rate(HTTP), unit="reqps"),
            stat(
                "5xx ratio",
                "Share of HTTP answers with a 5xx status.",
                s.share(HTTP, FIVE_XX),
                unit="percentunit",
                red_from=0.01,
            ),
            stat(
                "p99 latency",
                "HTTP answer time, 99th percentile, all routes.",
                s.quantile(0.99, HTTP_SECONDS),
                unit="s",
                red_from=1.0,
            ),
            stat(
                "Requests in flight",
                "Kafka requests waiting for a worker's reply now.",
                s.gauge("x0_requester_in_flight"),
            ),
            ts(
                "Request rate by route",
                "HTTP requests per second by method and route.",
                (s.rate(HTTP, "method", "route"), "{{method}} {{route}}"),
                unit="reqps",
            ),
            ts(
                "Responses by status",
                "HTTP answers per second by status code.",
                (s.rate(HTTP, "status"), "{{status}}"),
                unit="reqps",
            ),
            ts(
                "5xx ratio by route",
                "Share of each route's answers that were 5xx.",
                (s.share(HTTP, FIVE_XX, "route"), "{{route}}"),
                unit="percentunit",
            ),
            ts(
                "Latency p50 / p95 / p99",
                "HTTP answer time percentiles over all routes.",
                (s.quantile(0.5, HTTP_SECONDS), "p50"),
                (s.quantile(0.95, HTTP_SECONDS), "p95"),
                (s.quantile(0.99, HTTP_SECONDS), "p99"),
                unit="s",
            ),
            ts(
                "p99 latency by route",
                "HTTP answer time, 99th percentile, per route.",
                (s.quantile(0.99, HTTP_SECONDS, "route"), "{{route}}"),
                unit="s",
            ),
            ts(
                "Kafka requests by type",
                "Requests the gateway published to the workers per second, by message type.",
                (by_type, "{{type}}"),
                unit="reqps",
            ),
            ts(
                "Requester timeouts and rejections",
                "Requests with no reply before their deadline, and requests refused because "
                "too many were in flight, per second by type (zero while none happened).",
                (timeouts, "timeout {{type}}"),
                (rejected, "rejected {{type}}"),
                unit="reqps",
            ),
            ts(
                "Replies by outcome",
                "Worker replies per second by type: ok, error or unavailable.",
                (s.rate("x0_requester_replies_total", "type", "outcome"), "{{type}} {{outcome}}"),
                unit="reqps",
            ),
            ts(
                "Reply latency by type",
                "Publish-to-reply time, p50 and p99, per message type.",
                (s.quantile(0.5, reply, "type"), "p50 {{type}}"),
                (s.quantile(0.99, reply, "type"), "p99 {{type}}"),
                unit="s",
            ),
            ts(
                "In flight by replica",
                "Kafka requests waiting for a reply, per gateway replica.",
                (s.gauge("x0_requester_in_flight", "instance"), "{{instance}}"),
            ),
        ],
    )


OPS = "x0_crypto_ops_total"
NOT_OK = 'outcome!="ok"'


def crypto() -> Json:
    s = Service("crypto")
    handled = s.rate("x0_responder_handled_total")
    dead_lettered = zero_until_seen(s.rate("x0_responder_dead_lettered_total", "reason"), handled)
    key_ops = s.rate("x0_responder_handled_total", where='type=~"crypto[.]keys[.].*"')
    key_failures = zero_until_seen(
        s.rate("x0_crypto_key_failures_total", "operation", "code"), key_ops
    )
    return dashboard(
        "x0-crypto",
        "x0 / Crypto",
        "crypto",
        [
            stat("Operations/s", "Cryptographic operations per second.", s.rate(OPS), unit="ops"),
            stat(
                "Failure ratio",
                "Share of cryptographic operations that failed.",
                s.share(OPS, NOT_OK),
                unit="percentunit",
                red_from=0.01,
            ),
            stat(
                "Managed keys",
                "Managed keys stored (the table's count, the same on every replica).",
                s.gauge("x0_crypto_managed_keys", op="max"),
            ),
            stat(
                "Dead-lettered/s",
                "Crypto requests parked on the DLQ per second.",
                zero_until_seen(s.rate("x0_responder_dead_lettered_total"), handled),
                unit="ops",
                red_from=1e-6,
            ),
            ts(
                "Operations by algorithm and operation",
                "Cryptographic operations per second, per algorithm and operation.",
                (s.rate(OPS, "algorithm", "operation"), "{{algorithm}} {{operation}}"),
                unit="ops",
            ),
            ts(
                "Operations by outcome",
                "Cryptographic operations per second by algorithm and outcome (ok or the code).",
                (s.rate(OPS, "algorithm", "outcome"), "{{algorithm}} {{outcome}}"),
                unit="ops",
            ),
            ts(
                "Failure ratio by algorithm",
                "Share of each algorithm's operations whose outcome was not ok.",
                (s.share(OPS, NOT_OK, "algorithm"), "{{algorithm}}"),
                unit="percentunit",
            ),
            ts(
                "Operation p99 by algorithm",
                "Time of one cryptographic operation, 99th percentile, per algorithm.",
                (s.quantile(0.99, "x0_crypto_op_duration_seconds", "algorithm"), "{{algorithm}}"),
                unit="s",
            ),
            ts(
                "Key rotations",
                "Managed key rotations per second, manual or automatic.",
                (s.rate("x0_crypto_key_rotations_total", "trigger"), "{{trigger}}"),
                unit="ops",
            ),
            ts(
                "Managed-key failures",
                "Failed managed-key operations per second by operation and error code "
                "(zero while none failed).",
                (key_failures, "{{operation}} {{code}}"),
                unit="ops",
            ),
            ts(
                "Beacon verifications by result",
                "Beacon verifications per second: ok or the rejection reason. Replays and key "
                "mismatches are attack signals; stale/future point at clock drift.",
                (s.rate("x0_crypto_beacon_verifications_total", "result"), "{{result}}"),
                unit="ops",
            ),
            ts(
                "Dead-lettered by reason",
                "Crypto requests parked on the DLQ per second, by reason (zero while none).",
                (dead_lettered, "{{reason}}"),
                unit="ops",
            ),
            *responder_panels(s),
        ],
    )


CACHE = "x0_rag_cache_total"
SEARCH = "x0_rag_search_latency_seconds"
EMBED = "x0_rag_embed_latency_seconds"
HIT = 'result="hit"'


def rag() -> Json:
    s = Service("rag")
    return dashboard(
        "x0-rag",
        "x0 / RAG",
        "rag",
        [
            stat(
                "Searches/s",
                "Searches answered per second.",
                s.rate(f"{SEARCH}_count"),
                unit="reqps",
            ),
            stat(
                "Cache hit ratio",
                "Share of query-cache lookups that hit.",
                s.share(CACHE, HIT),
                unit="percentunit",
            ),
            stat(
                "Replication lag",
                "Index events the most lagging replica has not applied yet.",
                s.gauge("x0_rag_replication_lag", op="max"),
                red_from=1000,
            ),
            stat(
                "Oldest snapshot",
                "Age of the oldest index snapshot on any replica.",
                s.gauge("x0_rag_snapshot_age_seconds", op="max"),
                unit="s",
            ),
            ts(
                "Ingested documents",
                "Documents upserted or deleted per second, by collection and action.",
                (
                    s.rate("x0_rag_ingested_documents_total", "collection", "action"),
                    "{{collection}} {{action}}",
                ),
                unit="ops",
            ),
            ts(
                "Ingested chunks",
                "Chunks written per second, by collection.",
                (s.rate("x0_rag_ingested_chunks_total", "collection"), "{{collection}}"),
                unit="ops",
            ),
            ts(
                "Embed batch size",
                "Texts per model call: mean and 95th percentile.",
                (s.mean("x0_rag_embed_batch_size"), "mean"),
                (s.quantile(0.95, "x0_rag_embed_batch_size"), "p95"),
            ),
            ts(
                "Embed latency",
                "Time of one model call, p50 and p99.",
                (s.quantile(0.5, EMBED), "p50"),
                (s.quantile(0.99, EMBED), "p99"),
                unit="s",
            ),
            ts(
                "Search latency by mode",
                "Time to answer a search, p50 and p99, per search mode.",
                (s.quantile(0.5, SEARCH, "mode"), "p50 {{mode}}"),
                (s.quantile(0.99, SEARCH, "mode"), "p99 {{mode}}"),
                unit="s",
            ),
            ts(
                "Cache hit ratio by kind",
                "Share of each cache's lookups that hit.",
                (s.share(CACHE, HIT, "kind"), "{{kind}}"),
                unit="percentunit",
            ),
            ts(
                "Index size",
                "Live vectors per collection on each replica.",
                (
                    s.gauge("x0_rag_index_size", "collection", "instance"),
                    "{{collection}} {{instance}}",
                ),
            ),
            ts(
                "Replication lag by replica",
                "Index events each replica has not applied yet.",
                (s.gauge("x0_rag_replication_lag", "instance", op="max"), "{{instance}}"),
            ),
            ts(
                "Snapshot age",
                "Seconds since each replica's last snapshot, by collection.",
                (
                    s.gauge("x0_rag_snapshot_age_seconds", "collection", "instance", op="max"),
                    "{{collection}} {{instance}}",
                ),
                unit="s",
            ),
            *responder_panels(s),
        ],
    )


EVENTS = "x0_telemetry_events_total"
NODES = "x0_telemetry_nodes"
BATCH = "x0_telemetry_ingest_batch_size"
WRITE = "x0_telemetry_ingest_write_seconds"


def telemetry() -> Json:
    s = Service("telemetry")
    events = s.rate(EVENTS)

    def nodes(status: str) -> str:
        # Every mesh exports all four statuses (zeros included), so this is never empty.
        return s.shared(NODES, ("mesh_id", "status"), where=f'status="{status}"')

    # Both counters are created at 0 with the service, so no padding is needed.
    refused = s.rate("x0_telemetry_node_series_dropped_total")
    dropped = s.sel("x0_telemetry_partitions_dropped_total")
    partitions = f"sum(increase({dropped}[{WINDOW}]))"
    return dashboard(
        "x0-telemetry",
        "x0 / Telemetry",
        "telemetry",
        [
            stat("Nodes up", "Mesh nodes whose latest heartbeat is recent and up.", nodes("up")),
            stat(
                "Nodes down",
                "Mesh nodes whose latest heartbeat is older than the timeout.",
                nodes("down"),
                red_from=1,
            ),
            stat("Events/s", "Telemetry events ingested per second.", events, unit="ops"),
            stat(
                "Dead-lettered ratio",
                "Share of telemetry events sent to the DLQ.",
                s.share(EVENTS, 'outcome="dead_lettered"'),
                unit="percentunit",
                red_from=0.01,
            ),
            ts(
                "Events by type and outcome",
                "Events per second by type and outcome: stored, duplicate or dead_lettered.",
                (s.rate(EVENTS, "type", "outcome"), "{{type}} {{outcome}}"),
                unit="ops",
            ),
            ts(
                "Nodes by mesh and status",
                "Nodes per mesh by derived status: up, degraded, draining or down.",
                (
                    s.shared(NODES, ("mesh_id", "status"), "mesh_id", "status"),
                    "{{mesh_id}} {{status}}",
                ),
            ),
            ts(
                "Ingest batch size",
                "Events per ingest batch: mean and 95th percentile.",
                (s.mean(BATCH), "mean"),
                (s.quantile(0.95, BATCH), "p95"),
            ),
            ts(
                "Batch write latency",
                "One batch's PostgreSQL and Redis write, p50 and p99.",
                (s.quantile(0.5, WRITE), "p50"),
                (s.quantile(0.99, WRITE), "p99"),
                unit="s",
            ),
            ts(
                "Heartbeat age per node",
                "Seconds since each node's latest heartbeat (node series are capped).",
                (
                    s.gauge(
                        "x0_telemetry_node_heartbeat_age_seconds", "mesh_id", "node_id", op="max"
                    ),
                    "{{mesh_id}} {{node_id}}",
                ),
                unit="s",
            ),
            ts(
                "Link quality per node",
                "Mean neighbour link quality of each node's latest metrics, 0 to 1.",
                (
                    s.gauge("x0_telemetry_node_link_quality", "mesh_id", "node_id", op="min"),
                    "{{mesh_id}} {{node_id}}",
                ),
                unit="percentunit",
            ),
            ts(
                "Node series refused by the cap",
                "Node-labelled series refused per second because the cap was reached, e.g. "
                "by a flood of fake node ids (zero while none).",
                (refused, "refused"),
                unit="ops",
            ),
            ts(
                "Partitions dropped by retention",
                "History partitions the retention job dropped, per window (zero while none).",
                (partitions, "dropped"),
            ),
            *responder_panels(s),
        ],
    )


def kafka() -> Json:
    # The lag exporter runs in the telemetry service; responders run in every worker.
    s = Service("telemetry")
    lag = "x0_kafka_consumer_lag"
    dlq = "x0_kafka_dlq_messages"
    written = "x0_kafka_topic_end_offset"
    # Created at 0 with the exporter, so no padding is needed.
    scrape_errors = s.rate("x0_kafka_lag_scrape_errors_total")
    # Every telemetry replica may run the exporter: count each partition once.
    partition_lag = ("group", "topic", "partition")
    written_per_partition = f"max by (topic, partition) (rate({s.sel(written)}[{WINDOW}]))"
    workers = 'service=~"crypto|rag|telemetry"'
    dead = f"rate(x0_responder_dead_lettered_total{{{workers}}}[{WINDOW}])"
    handled = f"rate(x0_responder_handled_total{{{workers}}}[{WINDOW}])"
    dead_lettered = zero_until_seen(
        f"sum by (service, topic, reason) ({dead})", f"sum by (service) ({handled})", "service"
    )
    return dashboard(
        "x0-kafka",
        "x0 / Kafka overview",
        "kafka",
        [
            stat(
                "Total consumer lag",
                "Messages not consumed yet, over every x0 consumer group.",
                s.shared(lag, partition_lag),
                red_from=1000,
            ),
            stat(
                "DLQ messages",
                "Messages held by all dead-letter topics.",
                s.shared(dlq, ("topic",)),
                red_from=1,
            ),
            stat(
                "Messages/s",
                "Messages written per second to all x0 topics.",
                f"sum({written_per_partition})",
            ),
            stat(
                "Lag scrape errors/s",
                "Failed reads of group offsets by the lag exporter, per second.",
                scrape_errors,
                red_from=1e-6,
            ),
            ts(
                "Consumer lag by group and topic",
                "Messages each consumer group has not consumed yet, per topic.",
                (s.shared(lag, partition_lag, "group", "topic"), "{{group}} {{topic}}"),
                width=24,
            ),
            ts(
                "DLQ depth by topic",
                "Messages held by each dead-letter topic.",
                (s.shared(dlq, ("topic",), "topic"), "{{topic}}"),
            ),
            ts(
                "Throughput by topic",
                "Messages written per second to each x0 topic (rate of its end offsets).",
                (f"sum by (topic) ({written_per_partition})", "{{topic}}"),
                unit="ops",
            ),
            ts(
                "Dead-lettered by reason",
                "Messages the workers parked on a DLQ per second, by service, source topic "
                "and reason (zero per service while none).",
                (dead_lettered, "{{service}} {{topic}} {{reason}}"),
                unit="ops",
            ),
            ts(
                "Lag scrape errors",
                "Failed reads of consumer group offsets per second (zero while none).",
                (scrape_errors, "errors"),
                unit="ops",
            ),
        ],
    )


DASHBOARDS: dict[str, Callable[[], Json]] = {
    "gateway": gateway,
    "crypto": crypto,
    "rag": rag,
    "telemetry": telemetry,
    "kafka": kafka,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard, exactly as committed."""
    return {
        f"{name}.json": json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def metric_names(expr: str) -> set[str]:
    """The ``x0_`` metric names an expression reads (quoted label values ignored)."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\b(x0_[a-z0-9_]+)\b", unquoted))


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every panel target, ``$__rate_interval`` kept."""
    return [
        (board["uid"], panel["title"], target["expr"])
        for board in (build() for build in DASHBOARDS.values())
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def main(argv: Sequence[str]) -> int:
    """Write the dashboards; with ``--check``, only list the stale ones (exit 1 if any)."""
    check = "--check" in argv
    stale = [name for name, text in render().items() if _differs(OUT_DIR / name, text)]
    if not check:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in render().items():
            (OUT_DIR / name).write_text(text, encoding="utf-8")
    sys.stdout.write(f"{'stale' if check else 'updated'}: {', '.join(stale) or 'none'}\n")
    return 1 if check and stale else 0


def _differs(path: Path, text: str) -> bool:
    return not path.exists() or path.read_text(encoding="utf-8") != text


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
