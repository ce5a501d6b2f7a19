"""Section ``crypto``: ML-KEM-768 encapsulation through the gateway.

- Batches of 64 through gateway → Kafka → crypto worker, against direct pyca calls
  in this process (throughput; target: at least half of direct).
- Single operations through the gateway, against the raw Kafka echo round trip
  measured in the same run (p50; target: at most 1.5 times).

The gateway and the worker run as real processes, as in production.
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from contextlib import ExitStack

import httpx
from cryptography.hazmat.primitives.asymmetric import mlkem

from bench.harness import closed_loop, percentile, worker_process
from bench.kafka import RawEchoClient
from bench.report import Record
from x0_common.kafka.clients import ensure_topics
from x0_common.settings import CommonSettings
from x0_common.testing.processes import service_process
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key

BATCH = 64
BATCH_CONCURRENCY = 4
BATCHES = 60
SINGLE_CALLS = 400
DIRECT_SECONDS = 2.0


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


async def raw_echo_p50(settings: CommonSettings) -> float:
    """The raw aiokafka echo round trip, p50 at concurrency 1, in seconds."""
    topic = f"bench.raw.crypto.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings.kafka, [topic])
    client = RawEchoClient(settings.kafka, f"{topic}.replies")
    with worker_process("bench.raw_echo", "--topic", topic):
        await client.start()
        try:
            await closed_loop(lambda: client.request(topic, b"{}"), concurrency=1, total=100)
            latencies = await closed_loop(
                lambda: client.request(topic, b"{}"), concurrency=1, total=SINGLE_CALLS
            )
        finally:
            await client.stop()
    return percentile(latencies, 0.5)


async def run(settings: CommonSettings) -> list[Record]:
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
        stack.enter_context(
            service_process("x0_crypto", environment=environment, port_variable="X0_CRYPTO_PORT")
        )
        port = stack.enter_context(
            service_process("x0_gateway", environment=environment, port_variable="X0_GATEWAY_PORT")
        )
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=60,
            headers={"Authorization": f"Bearer {key.key}"},
        ) as client:

            async def one() -> object:
                response = await client.post("/v1/crypto/kem/encapsulate", json=single)
                response.raise_for_status()
                return response

            async def many() -> object:
                response = await client.post("/v1/crypto/kem/encapsulate/batch", json=batch)
                response.raise_for_status()
                return response

            await closed_loop(one, concurrency=4, total=200)
            single_latencies = await closed_loop(one, concurrency=1, total=SINGLE_CALLS)
            started = time.perf_counter()
            await closed_loop(many, concurrency=BATCH_CONCURRENCY, total=BATCHES)
            batch_throughput = BATCHES * BATCH / (time.perf_counter() - started)
        echo_p50 = await raw_echo_p50(settings)
    direct = await asyncio.to_thread(direct_throughput, public_key)

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
            value=percentile(single_latencies, 0.5) * 1000,
            unit="ms",
            baseline="raw aiokafka echo p50 at concurrency 1",
            baseline_value=echo_p50 * 1000,
            target="<= 1.5",
        ),
    ]
