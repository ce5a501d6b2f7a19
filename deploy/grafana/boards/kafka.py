"""The Kafka overview: consumer lag, dead-letter topics and throughput over every service."""

from __future__ import annotations

from panels import Panel, graph, number
from promql import WINDOW, Service, zero_until_seen

TITLE = "x0 / Kafka overview"

LAG = "x0_kafka_consumer_lag"
DLQ = "x0_kafka_dlq_messages"
WRITTEN = "x0_kafka_topic_end_offset"
# Every telemetry replica may run the exporter: count each partition once.
PARTITION_LAG = ("group", "topic", "partition")
WORKERS = 'service=~"crypto|rag|telemetry"'


def panels() -> list[Panel]:
    # The lag exporter runs in the telemetry service; responders run in every worker.
    s = Service("telemetry")
    # Created at 0 with the exporter, so no padding is needed.
    scrape_errors = s.rate("x0_kafka_lag_scrape_errors_total")
    written_per_partition = f"max by (topic, partition) (rate({s.sel(WRITTEN)}[{WINDOW}]))"
    dead = f"rate(x0_responder_dead_lettered_total{{{WORKERS}}}[{WINDOW}])"
    handled = f"rate(x0_responder_handled_total{{{WORKERS}}}[{WINDOW}])"
    dead_lettered = zero_until_seen(
        f"sum by (service, topic, reason) ({dead})", f"sum by (service) ({handled})", "service"
    )
    return [
        number(
            "Total consumer lag",
            "Messages not consumed yet, over every x0 consumer group.",
            s.shared(LAG, PARTITION_LAG),
            red_from=1000,
        ),
        number(
            "DLQ messages",
            "Messages held by all dead-letter topics.",
            s.shared(DLQ, ("topic",)),
            red_from=1,
        ),
        number(
            "Messages/s",
            "Messages written per second to all x0 topics.",
            f"sum({written_per_partition})",
        ),
        number(
            "Lag scrape errors/s",
            "Failed reads of group offsets by the lag exporter, per second.",
            scrape_errors,
            red_from=1e-6,
        ),
        graph(
            "Consumer lag by group and topic",
            "Messages each consumer group has not consumed yet, per topic.",
            (s.shared(LAG, PARTITION_LAG, "group", "topic"), "{{group}} {{topic}}"),
            width=24,
        ),
        graph(
            "DLQ depth by topic",
            "Messages held by each dead-letter topic.",
            (s.shared(DLQ, ("topic",), "topic"), "{{topic}}"),
        ),
        graph(
            "Throughput by topic",
            "Messages written per second to each x0 topic (rate of its end offsets).",
            (f"sum by (topic) ({written_per_partition})", "{{topic}}"),
            unit="ops",
        ),
        graph(
            "Dead-lettered by reason",
            "Messages the workers parked on a DLQ per second, by service, source topic "
            "and reason (zero per service while none).",
            (dead_lettered, "{{service}} {{topic}} {{reason}}"),
            unit="ops",
        ),
        graph(
            "Lag scrape errors",
            "Failed reads of consumer group offsets per second (zero while none).",
            (scrape_errors, "errors"),
            unit="ops",
        ),
    ]
