"""The service-side view of a run: range queries to the Prometheus at ``X0_PROMETHEUS_URL``.

``make up`` runs one on http://127.0.0.1:9090 (15 s scrapes); ``load/ci.py`` runs one of
its own (5 s scrapes) for the services it starts. Each panel is a PromQL query over the
run's window; a panel whose query returns nothing is drawn empty, with a note.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

DEFAULT_URL = "http://127.0.0.1:9090"
# The rate() window: at least two scrapes. make up's Prometheus scrapes every 15 s;
# load/ci.py's every 5 s and sets X0_LOAD_PROMETHEUS_WINDOW=20s.
WINDOW_VARIABLE = "X0_LOAD_PROMETHEUS_WINDOW"
DEFAULT_WINDOW = "1m"
# The API's routes, not the probes' and scrapes'.
API_ROUTES = 'service="gateway",route=~"/v1/.*"'
# The services' own consumer groups (x0-crypto, x0-rag-queries ...), not those that
# tests left on a shared broker (x0-crypto-e2e-6a6f476a).
SERVICE_GROUPS = "x0-[a-z]+(-[a-z]+)?"


@dataclass(frozen=True)
class Panel:
    """A chart panel: a title, a unit and a query whose series are drawn."""

    title: str
    unit: str
    query: str
    label: str  # the series label that names a line
    empty: str = "no data"  # what no series means


def panels(window: str) -> tuple[Panel, ...]:
    """The panels, with rates over ``window``."""
    return (
        Panel(
            "gateway requests/s per route",
            "req/s",
            f"sum by (route) (rate(x0_http_requests_total{{{API_ROUTES}}}[{window}]))",
            "route",
        ),
        Panel(
            "gateway p95 latency per route",
            "s",
            "histogram_quantile(0.95, sum by (route, le) "
            f"(rate(x0_http_request_duration_seconds_bucket{{{API_ROUTES}}}[{window}])))",
            "route",
        ),
        Panel(
            "worker handler p95 per service",
            "s",
            "histogram_quantile(0.95, sum by (service, le) "
            f"(rate(x0_responder_handler_duration_seconds_bucket[{window}])))",
            "service",
        ),
        Panel(
            "worker messages handled/s per service",
            "msg/s",
            f"sum by (service) (rate(x0_responder_handled_total[{window}]))",
            "service",
        ),
        Panel(
            "Kafka consumer lag per group",
            "messages",
            f'sum by (group) (x0_kafka_consumer_lag{{group=~"{SERVICE_GROUPS}"}})',
            "group",
        ),
        Panel(
            "gateway 5xx and 429 per second",
            "req/s",
            'sum by (status) (rate(x0_http_requests_total{service="gateway",status=~"5..|429"}'
            f"[{window}]))",
            "status",
            empty="none",
        ),
    )


Series = dict[str, list[tuple[float, float]]]


def window() -> str:
    """The rate() window of this run's queries."""
    return os.environ.get(WINDOW_VARIABLE) or DEFAULT_WINDOW


def url() -> str:
    """Where the Prometheus is."""
    return (os.environ.get("X0_PROMETHEUS_URL") or DEFAULT_URL).rstrip("/")


def answers(base: str) -> bool:
    """True when a Prometheus is ready at ``base``."""
    try:
        with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def query_range(base: str, panel: Panel, start: float, end: float, step: float) -> Series:
    """The panel's series over [start, end], by the value of its label."""
    params = urllib.parse.urlencode(
        {"query": panel.query, "start": start, "end": end, "step": f"{step:g}s"}
    )
    with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=10) as r:  # noqa: S310
        body = json.load(r)
    series: Series = {}
    for result in body.get("data", {}).get("result", []):
        name = result["metric"].get(panel.label, "?")
        points = [(float(t), float(v)) for t, v in result["values"] if v not in {"NaN", "+Inf"}]
        if points:
            series[name] = points
    return series
