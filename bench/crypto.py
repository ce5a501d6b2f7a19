"""Section ``crypto``: ML-KEM-768 encapsulation through the gateway.

- Batches of 64 through gateway → Kafka → crypto worker, against direct pyca calls
  in this process (throughput; target: at least half of direct).
- Single operations through the gateway at concurrency 1, against the sum of two
  baselines: an HTTP echo on the gateway's own HTTP server and settings
  (``bench.http_echo``), called by the same client (httpx in this process, the same
  headers and body), and the raw aiokafka echo round trip (``bench.raw_echo``) with
  the same body. Targets: p50 at most 1.3 times, p99 at most 2 times. The ratio
  against the raw Kafka echo alone is kept as a record too (at most 1.5 times).

The single calls run in rounds that alternate between six paths (so that drift in the
machine's speed falls on all alike; ``bench.single_op``): the gateway, the two
baselines, and three that split the gap: ``GET /health/live`` on the gateway (its
FastAPI app and middlewares, no authentication, no Kafka), the x0 Requester against
the x0 echo worker (the x0 Kafka core: sealing, validation, tracing, metrics, offsets)
and the handler's own work in this process (decode the key, encapsulate, base64). For
each path the CPU ms per call of every process involved is printed beside p50/p99.

The gateway and the worker run as real processes, as in production. With
``X0_BENCH_PROFILE=<folder>``, a further pass of single operations (not timed) runs
under py-spy: flame graphs of the gateway, the crypto worker and this process.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import uuid
from contextlib import ExitStack
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives.asymmetric import mlkem

from bench.harness import closed_loop, profiled, worker_process
from bench.kafka import RawEchoClient
from bench.report import Record
from bench.single_op import CpuMeter, listening_pid, print_table, rounds
from x0_common.kafka import Requester
from x0_common.kafka.clients import ensure_topics
from x0_common.metrics import RequesterMetrics, new_registry
from x0_common.settings import CommonSettings
from x0_common.testing.echo import ECHO_TYPE, EchoRequest
from x0_common.testing.processes import service
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key

BATCH = 64
BATCH_CONCURRENCY = 4
BATCHES = 60
SINGLE_CALLS = 600  # in SINGLE_ROUNDS rounds, alternating with the baselines
SINGLE_ROUNDS = 3
DIRECT_SECONDS = 2.0
ENCAPSULATE = "/v1/crypto/kem/encapsulate"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def direct_throughput(public_key: bytes) -> float:
    """Encapsulations per second with pyca in this process, one thread."""
    key = mlkem.MLKEM768PublicKey.from_public_bytes(public_key)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < DIRECT_SECONDS:
        for _ in range(100):
            key.encapsulate()
        count += 100
    return count / (time.perf_counter() - started)


async def handler_in_process(public_key: str) -> object:
    """What the crypto handler does for one request, in this process: decode the key,
    encapsulate, encode the result."""
    key = mlkem.MLKEM768PublicKey.from_public_bytes(base64.urlsafe_b64decode(public_key + "="))
    shared_secret, ciphertext = key.encapsulate()
    return {"ciphertext": _b64(ciphertext), "shared_secret": _b64(shared_secret)}


def _port(url: str) -> int:
    """The port of ``host:port`` or a URL."""
    first = url.split(",", maxsplit=1)[0]
    return urlsplit(first if "//" in first else f"//{first}").port or 0


async def run(settings: CommonSettings) -> list[Record]:  # noqa: PLR0915 - one story, in order
    """Measure and return the crypto records."""
    run_id = uuid.uuid4().hex[:8]
    environment = {
        "X0_CRYPTO_GROUP_ID": f"x0-crypto-bench-{run_id}",
        "X0_GATEWAY_REPLICA_ID": f"bench-{run_id}",
        "X0_GATEWAY_METRICS_PORT": "0",
    }
    # A caller's key, as any client of the gateway sends one (every call is checked).
    key = await provision_key(settings.postgres, GatewaySettings().pepper(), scopes={"crypto"})
    private = mlkem.MLKEM768PrivateKey.generate()
    public_key = private.public_key().public_bytes_raw()
    single = {"algorithm": "ML-KEM-768", "public_key": _b64(public_key)}
    batch = {"items": [single] * BATCH}

    with ExitStack() as stack:
        worker = stack.enter_context(
            service("x0_crypto", environment=environment, port_variable="X0_CRYPTO_PORT")
        )
        gateway = stack.enter_context(
            service("x0_gateway", environment=environment, port_variable="X0_GATEWAY_PORT")
        )
        http_echo = stack.enter_context(
            service("bench.http_echo", environment={}, port_variable="X0_BENCH_HTTP_ECHO_PORT")
        )
        raw_topic, x0_topic = f"bench.raw.crypto.{run_id}", f"bench.x0.crypto.{run_id}"
        await ensure_topics(settings.kafka, [raw_topic, x0_topic, f"{x0_topic}.dlq"])
        raw_echo = stack.enter_context(worker_process("bench.raw_echo", "--topic", raw_topic))
        x0_echo = stack.enter_context(
            worker_process("x0_common.testing.echo", "--topic", x0_topic, "--group", x0_topic)
        )
        client_options: dict[str, Any] = {
            "timeout": 60,
            "headers": {"Authorization": f"Bearer {key.key}"},
        }
        kafka = RawEchoClient(settings.kafka, f"{raw_topic}.replies")
        requester = Requester(
            settings.kafka,
            reply_topic=f"{x0_topic}.replies",
            metrics=RequesterMetrics(new_registry(), "bench"),
        )
        await kafka.start()
        await requester.start()
        try:
            async with (
                httpx.AsyncClient(base_url=gateway.url, **client_options) as client,
                httpx.AsyncClient(base_url=http_echo.url, **client_options) as echo,
            ):
                headers = {"content-type": "application/json"}
                body = json.dumps(single).encode()
                echo_request = EchoRequest(text=single["public_key"])

                async def one() -> object:
                    response = await client.post(ENCAPSULATE, content=body, headers=headers)
                    response.raise_for_status()
                    return response

                async def many() -> object:
                    response = await client.post(f"{ENCAPSULATE}/batch", json=batch)
                    response.raise_for_status()
                    return response

                async def live() -> object:
                    response = await client.get("/health/live")
                    response.raise_for_status()
                    return response

                async def http_echo_call() -> object:
                    response = await echo.post(ENCAPSULATE, content=body, headers=headers)
                    response.raise_for_status()
                    return response

                async def kafka_echo() -> object:
                    return await kafka.request(raw_topic, body)

                async def x0_echo_call() -> object:
                    return await requester.request(x0_topic, ECHO_TYPE, echo_request, timeout=30)

                paths = {
                    "gateway": one,
                    "http_echo": http_echo_call,
                    "kafka_echo": kafka_echo,
                    "gateway_live": live,
                    "x0_kafka_echo": x0_echo_call,
                    "handler_inproc": lambda: handler_in_process(single["public_key"]),
                }
                meter = CpuMeter(
                    {
                        "bench": os.getpid(),
                        "gateway": gateway.process.pid,
                        "crypto": worker.process.pid,
                        "http_echo": http_echo.process.pid,
                        "raw_echo": raw_echo.pid,
                        "x0_echo": x0_echo.pid,
                        "kafka": listening_pid(_port(settings.kafka.bootstrap_servers)),
                        "redis": listening_pid(_port(settings.redis.url.get_secret_value())),
                        "postgres": listening_pid(_port(settings.postgres.dsn.get_secret_value())),
                    },
                    with_children={"postgres"},
                )
                await closed_loop(one, concurrency=4, total=200)
                samples = await rounds(
                    paths, meter, calls=SINGLE_CALLS, rounds=SINGLE_ROUNDS, warmup=100
                )
                started = time.perf_counter()
                await closed_loop(many, concurrency=BATCH_CONCURRENCY, total=BATCHES)
                batch_throughput = BATCHES * BATCH / (time.perf_counter() - started)
                processes = {
                    "crypto_single-gateway": gateway.process.pid,
                    "crypto_single-crypto": worker.process.pid,
                    "crypto_single-bench": os.getpid(),
                }
                with profiled(processes):
                    await closed_loop(one, concurrency=1, total=SINGLE_CALLS)
        finally:
            await requester.stop()
            await kafka.stop()
    direct = await asyncio.to_thread(direct_throughput, public_key)
    baseline = {q: samples["http_echo"].ms(q) + samples["kafka_echo"].ms(q) for q in (0.5, 0.99)}
    print(
        f"single calls at concurrency 1, {SINGLE_CALLS} per path in {SINGLE_ROUNDS} "
        "alternating rounds:",
        flush=True,
    )
    print_table(samples, meter.names)
    gap = samples["gateway"].ms(0.5) - baseline[0.5]
    middleware = samples["gateway_live"].ms(0.5) - samples["http_echo"].ms(0.5)
    core = samples["x0_kafka_echo"].ms(0.5) - samples["kafka_echo"].ms(0.5)
    handler = samples["handler_inproc"].ms(0.5)
    print(
        "gap of the gateway p50 over HTTP echo + Kafka echo, by p50 differences (ms):\n"
        f"  gap                                                  {gap:7.3f}\n"
        f"  FastAPI app and middlewares (GET /health/live - echo) {middleware:7.3f}\n"
        f"  x0 Kafka core (x0 Requester/Responder - raw echo)     {core:7.3f}\n"
        f"  handler in process (decode key, encapsulate, base64)  {handler:7.3f}\n"
        "  rest: authentication, rate limit, body validation, forwarding, reply mapping "
        f"{gap - middleware - core - handler:7.3f}",
        flush=True,
    )

    return [
        Record(
            name="crypto.mlkem768.encaps.batch64.throughput",
            value=batch_throughput,
            unit="ops/s",
            baseline="direct pyca ML-KEM-768 encapsulate in-process, one thread",
            baseline_value=direct,
            target=">= 0.5",
        ),
        Record(
            name="crypto.mlkem768.encaps.gateway.p50",
            value=samples["gateway"].ms(0.5),
            unit="ms",
            baseline="HTTP echo p50 (same server, settings, client) + raw Kafka echo p50",
            baseline_value=baseline[0.5],
            target="<= 1.3",
        ),
        Record(
            name="crypto.mlkem768.encaps.gateway.p99",
            value=samples["gateway"].ms(0.99),
            unit="ms",
            baseline="HTTP echo p99 + raw Kafka echo p99",
            baseline_value=baseline[0.99],
            target="<= 2.0",
        ),
        Record(
            name="crypto.mlkem768.encaps.gateway.p50_vs_kafka_echo",
            value=samples["gateway"].ms(0.5),
            unit="ms",
            baseline="raw aiokafka echo p50 at concurrency 1",
            baseline_value=samples["kafka_echo"].ms(0.5),
            target="<= 1.5",
        ),
    ]
