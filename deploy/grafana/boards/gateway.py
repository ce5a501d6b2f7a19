"""The gateway: HTTP answers, and the Kafka requests it makes of the workers."""

from __future__ import annotations

from panels import Kinds, Panel, graph, number
from promql import Service, zero_until_seen

TITLE = "x0 / Gateway"

HTTP = "x0_http_requests_total"
HTTP_SECONDS = "x0_http_request_duration_seconds"
FIVE_XX = 'status=~"5.."'
REQUESTS = "x0_requester_requests_total"
IN_FLIGHT = "x0_requester_in_flight"


def panels() -> list[Panel]:
    s = Service("gateway")
    k = Kinds(s, rate_unit="reqps")
    by_type = s.rate(REQUESTS, "type")
    timeouts = zero_until_seen(s.rate("x0_requester_timeouts_total", "type"), by_type, "type")
    rejected = zero_until_seen(s.rate("x0_requester_rejected_total", "type"), by_type, "type")
    return [
        number("Requests/s", "HTTP requests answered per second.", s.rate(HTTP), unit="reqps"),
        number(
            "5xx ratio",
            "Share of HTTP answers with a 5xx status.",
            s.share(HTTP, FIVE_XX),
            unit="percentunit",
            red_from=0.01,
        ),
        number(
            "p99 latency",
            "HTTP answer time, 99th percentile, all routes.",
            s.quantile(0.99, HTTP_SECONDS),
            unit="s",
            red_from=1.0,
        ),
        number(
            "Requests in flight",
            "Kafka requests waiting for a worker's reply now.",
            s.gauge(IN_FLIGHT),
        ),
        k.rates(
            "Request rate by route",
            "HTTP requests per second by method and route.",
            HTTP,
            "method",
            "route",
        ),
        k.rates("Responses by status", "HTTP answers per second by status code.", HTTP, "status"),
        k.ratio(
            "5xx ratio by route",
            "Share of each route's answers that were 5xx.",
            HTTP,
            FIVE_XX,
            "route",
        ),
        k.latency(
            "Latency p50 / p95 / p99",
            "HTTP answer time percentiles over all routes.",
            HTTP_SECONDS,
            qs=(0.5, 0.95, 0.99),
        ),
        k.latency(
            "p99 latency by route",
            "HTTP answer time, 99th percentile, per route.",
            HTTP_SECONDS,
            "route",
            qs=(0.99,),
        ),
        k.rates(
            "Kafka requests by type",
            "Requests the gateway published to the workers per second, by message type.",
            REQUESTS,
            "type",
        ),
        graph(
            "Requester timeouts and rejections",
            "Requests with no reply before their deadline, and requests refused because "
            "too many were in flight, per second by type (zero while none happened).",
            (timeouts, "timeout {{type}}"),
            (rejected, "rejected {{type}}"),
            unit="reqps",
        ),
        k.rates(
            "Replies by outcome",
            "Worker replies per second by type: ok, error or unavailable.",
            "x0_requester_replies_total",
            "type",
            "outcome",
        ),
        k.latency(
            "Reply latency by type",
            "Publish-to-reply time, p50 and p99, per message type.",
            "x0_requester_latency_seconds",
            "type",
        ),
        k.gauges(
            "In flight by replica",
            "Kafka requests waiting for a reply, per gateway replica.",
            IN_FLIGHT,
            "instance",
        ),
    ]
