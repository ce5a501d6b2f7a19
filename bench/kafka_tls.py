"""Section ``kafka_tls``: the requester over mutual TLS against the same over plaintext.

Issue 12's bound: the requester's p50 and throughput on mTLS at most 1.15x those on
plaintext, same run. Both paths are x0's Requester and an x0 echo worker in its own
process, on the same broker: one pair on the TLS listener (the stack's ops identity),
one on the development PLAINTEXT listener that ``make bench`` opens for this section
(``X0_TEST_STACK_KAFKA_PLAINTEXT_PORT``; ``stack.sh env`` names it in
``X0_STACK_KAFKA_PLAINTEXT_BOOTSTRAP``). Rounds alternate between the paths so that
machine noise falls on both alike. Throughput is compared as wall time per call in a
closed loop (the inverse of calls per second), so the same ``<= 1.15`` bound applies.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Awaitable, Callable

from bench.harness import closed_loop, percentile
from bench.report import Record
from x0_common.kafka import Requester
from x0_common.kafka.clients import ensure_topics
from x0_common.metrics import RequesterMetrics, new_registry
from x0_common.settings import CommonSettings, KafkaSettings
from x0_common.testing.echo import ECHO_TYPE, EchoRequest
from x0_common.testing.processes import printing_process

CONCURRENCIES = (1, 32)
ROUNDS = 3
CALLS = {1: 300, 32: 2400}
WARMUP = 200
TARGET = "<= 1.15"
PLAINTEXT_VARIABLE = "X0_STACK_KAFKA_PLAINTEXT_BOOTSTRAP"


def _plaintext(settings: KafkaSettings) -> KafkaSettings:
    address = os.environ.get(PLAINTEXT_VARIABLE)
    if not address:
        msg = (
            f"kafka_tls needs the broker's development PLAINTEXT listener ({PLAINTEXT_VARIABLE}):"
            " make bench opens one (X0_TEST_STACK_KAFKA_PLAINTEXT_PORT)"
        )
        raise RuntimeError(msg)
    return settings.model_copy(
        update={"bootstrap_servers": address, "security_protocol": "PLAINTEXT", "tls": None}
    )


async def run(settings: CommonSettings) -> list[Record]:
    """Measure both paths at each concurrency; return the records."""
    tls = settings.kafka
    if tls.protocol != "SSL":
        msg = "kafka_tls: the stack's Kafka settings are not on TLS (X0_TLS__* unset)"
        raise RuntimeError(msg)
    plain = _plaintext(tls)
    run_id = uuid.uuid4().hex[:8]
    topics = {"tls": f"bench.tls.{run_id}", "plain": f"bench.plain.{run_id}"}
    await ensure_topics(tls, [t for topic in topics.values() for t in (topic, f"{topic}.dlq")])
    paths = {"tls": tls, "plain": plain}
    worker_environment = {
        "tls": {},
        "plain": {
            "X0_KAFKA__BOOTSTRAP_SERVERS": plain.bootstrap_servers,
            "X0_KAFKA__SECURITY_PROTOCOL": "PLAINTEXT",
        },
    }
    latencies: dict[tuple[str, int], list[float]] = {
        (p, c): [] for p in paths for c in CONCURRENCIES
    }
    elapsed: dict[tuple[str, int], float] = dict.fromkeys(latencies, 0.0)
    requesters = {
        path: Requester(
            kafka,
            reply_topic=f"{topics[path]}.replies",
            metrics=RequesterMetrics(new_registry(), "bench"),
        )
        for path, kafka in paths.items()
    }
    body = EchoRequest(text="benchmark payload")
    with (
        printing_process(
            "x0_common.testing.echo",
            "--topic",
            topics["tls"],
            "--group",
            topics["tls"],
            environment={"X0_LOG_LEVEL": "WARNING", **worker_environment["tls"]},
        ),
        printing_process(
            "x0_common.testing.echo",
            "--topic",
            topics["plain"],
            "--group",
            topics["plain"],
            environment={"X0_LOG_LEVEL": "WARNING", **worker_environment["plain"]},
        ),
    ):
        for requester in requesters.values():
            await requester.start()
        try:

            def caller(path: str) -> Callable[[], Awaitable[object]]:
                async def call() -> object:
                    return await requesters[path].request(topics[path], ECHO_TYPE, body, timeout=30)

                return call

            for path in paths:
                await closed_loop(caller(path), concurrency=8, total=WARMUP)
            for _ in range(ROUNDS):
                for concurrency in CONCURRENCIES:
                    for path in paths:
                        started = time.perf_counter()
                        latencies[(path, concurrency)] += await closed_loop(
                            caller(path),
                            concurrency=concurrency,
                            total=CALLS[concurrency] // ROUNDS,
                        )
                        elapsed[(path, concurrency)] += time.perf_counter() - started
        finally:
            for requester in requesters.values():
                await requester.stop()

    records = []
    for concurrency in CONCURRENCIES:
        records.append(
            Record(
                name=f"kafka_tls.requester.p50.c{concurrency}",
                value=percentile(latencies[("tls", concurrency)], 0.5) * 1000,
                unit="ms",
                baseline=f"the same over plaintext, p50 at concurrency {concurrency}",
                baseline_value=percentile(latencies[("plain", concurrency)], 0.5) * 1000,
                target=TARGET,
            )
        )
        records.append(
            Record(
                name=f"kafka_tls.requester.time_per_call.c{concurrency}",
                value=elapsed[("tls", concurrency)] / CALLS[concurrency] * 1000,
                unit="ms",
                baseline=f"the same over plaintext (1/throughput) at concurrency {concurrency}",
                baseline_value=elapsed[("plain", concurrency)] / CALLS[concurrency] * 1000,
                target=TARGET,
            )
        )
    return records
