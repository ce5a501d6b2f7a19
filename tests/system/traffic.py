"""Traffic through every capability of the system, via the gateway process.

What each dashboard panel plots must exist after this: every algorithm family's
stateless operations, managed keys (created, used, rotated, refused), the mesh
beacons, RAG collections, ingest and every search mode (with a cache hit), telemetry
heartbeats and metrics with neighbours (more nodes than the node-series cap), every
telemetry query, and one bad request per worker so that error counters exist.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from x0_common.contract import Telemetry
from x0_common.events import telemetry
from x0_common.events.envelope import Headers
from x0_common.kafka.clients import connection_options, process_settings

KEMS = ("ML-KEM-512", "ML-KEM-768", "ML-KEM-1024", "X-Wing")
SIGNATURES = ("ML-DSA-44", "ML-DSA-65", "ML-DSA-87", "Ed25519+ML-DSA-65")


def b64(data: bytes) -> str:
    """base64url without padding, as the API writes binary fields."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _call(
    client: httpx.Client,
    method: str,
    path: str,
    body: Any = None,
    *,
    status: int = 200,
    params: dict[str, Any] | None = None,
) -> Any:
    response = client.request(method, path, json=body, params=params)
    assert response.status_code == status, (
        f"{method} {path}: {response.status_code} {response.text}"
    )
    return response.json() if response.content else None


def crypto_traffic(client: httpx.Client) -> None:
    """Stateless KEM and signature operations per algorithm, managed keys, beacons, and
    requests the worker refuses."""
    for algorithm in KEMS:
        pair = _call(client, "POST", "/v1/crypto/kem/keypair", {"algorithm": algorithm})
        sealed = _call(
            client,
            "POST",
            "/v1/crypto/kem/encapsulate",
            {"algorithm": algorithm, "public_key": pair["public_key"]},
        )
        opened = _call(
            client,
            "POST",
            "/v1/crypto/kem/decapsulate",
            {
                "algorithm": algorithm,
                "secret_key": pair["secret_key"],
                "ciphertext": sealed["ciphertext"],
            },
        )
        assert opened["shared_secret"] == sealed["shared_secret"]
    message = b64(b"mesh routing table")
    for algorithm in SIGNATURES:
        pair = _call(client, "POST", "/v1/crypto/signatures/keypair", {"algorithm": algorithm})
        signed = _call(
            client,
            "POST",
            "/v1/crypto/signatures/sign",
            {"algorithm": algorithm, "secret_key": pair["secret_key"], "message": message},
        )
        checked = _call(
            client,
            "POST",
            "/v1/crypto/signatures/verify",
            {
                "algorithm": algorithm,
                "public_key": pair["public_key"],
                "message": message,
                "signature": signed["signature"],
            },
        )
        assert checked["valid"] is True

    run = uuid.uuid4().hex[:8]
    vault, signer = f"dash-kem-{run}", f"dash-sig-{run}"
    _call(client, "POST", "/v1/crypto/keys", {"name": vault, "type": "X-Wing"}, status=201)
    _call(client, "POST", "/v1/crypto/keys", {"name": signer, "type": "ML-DSA-65"}, status=201)
    sealed = _call(client, "POST", f"/v1/crypto/keys/{vault}/encrypt", {"plaintext": message})
    _call(client, "POST", f"/v1/crypto/keys/{vault}/rotate")
    _call(client, "POST", f"/v1/crypto/keys/{vault}/decrypt", {"ciphertext": sealed["ciphertext"]})
    _call(client, "POST", f"/v1/crypto/keys/{signer}/sign", {"message": message})
    _call(client, "GET", f"/v1/crypto/keys/{vault}")
    beacon = _call(
        client, "POST", "/v1/crypto/beacons/sign", {"key_name": signer, "node_id": f"node-{run}"}
    )
    verified = _call(client, "POST", "/v1/crypto/beacons/verify", beacon)
    assert verified["valid"] is True, verified
    # Refused by the worker: a ciphertext of the wrong size, a key that does not exist.
    pair = _call(client, "POST", "/v1/crypto/kem/keypair", {"algorithm": "ML-KEM-768"})
    _call(
        client,
        "POST",
        "/v1/crypto/kem/decapsulate",
        {"algorithm": "ML-KEM-768", "secret_key": pair["secret_key"], "ciphertext": b64(b"x")},
        status=400,
    )
    _call(client, "POST", f"/v1/crypto/keys/missing-{run}/sign", {"message": message}, status=404)


# Two documents a search for "sunny weather" (or, by meaning, "a forecast of
# sunshine") tells apart: the first is the answer.
WEATHER_DOCUMENTS = (
    {"id": "weather", "text": "Sunny and warm weather all week in the south."},
    {"id": "files", "text": "Open a file with open() and read its lines."},
)


def weather_collection(client: httpx.Client, name: str) -> None:
    """Create collection ``name`` holding :data:`WEATHER_DOCUMENTS`, applied (searchable)
    before this returns."""
    created = client.post("/v1/rag/collections", json={"name": name})
    assert created.status_code == 201, created.text
    ingested = client.post(
        f"/v1/rag/collections/{name}/documents?wait=true",
        json={"documents": list(WEATHER_DOCUMENTS)},
    )
    assert ingested.status_code == 200, ingested.text


def rag_traffic(client: httpx.Client) -> None:
    """A collection, an ingest applied before answering, every search mode twice (the
    second a cache hit), and a search of a collection that does not exist."""
    name = f"dash-{uuid.uuid4().hex[:10]}"
    _call(client, "POST", "/v1/rag/collections", {"name": name}, status=201)
    documents = [
        {"id": "weather", "text": "Sunny and warm weather all week in the south."},
        {"id": "files", "text": "Open a file with open() and read its lines one by one."},
        {"id": "mesh", "text": "Mesh nodes report heartbeats and the quality of their links."},
    ]
    _call(
        client,
        "POST",
        f"/v1/rag/collections/{name}/documents?wait=true",
        {"documents": documents},
    )
    for mode in ("vector", "keyword", "hybrid"):
        for _ in range(2):
            found = _call(
                client,
                "POST",
                f"/v1/rag/collections/{name}/search",
                {"query": "sunny weather", "k": 2, "mode": mode},
            )
            assert found["hits"], found
    _call(client, "GET", f"/v1/rag/collections/{name}")
    _call(
        client,
        "POST",
        f"/v1/rag/collections/missing-{name}/search",
        {"query": "anything"},
        status=404,
    )


def telemetry_traffic(
    client: httpx.Client, kafka_bootstrap: str, *, nodes: int
) -> tuple[str, list[str]]:
    """Heartbeats and metrics (with neighbours) of ``nodes`` nodes of a new mesh, every
    query, a refused event and a malformed one straight on the topic (dead-lettered).
    Returns the mesh and its node ids."""
    mesh = f"mesh-dash-{uuid.uuid4().hex[:8]}"
    ids = [f"{mesh}-n{index:03d}" for index in range(nodes)]
    now = datetime.now(UTC)
    events: list[dict[str, Any]] = []
    for index, node in enumerate(ids):
        events.append(
            {
                "kind": "heartbeat",
                "node_id": node,
                "mesh_id": mesh,
                "timestamp": now.isoformat(),
                "status": "degraded" if index % 5 == 0 else "up",
                "software_version": "1.4.2",
            }
        )
        neighbours = [
            {"node_id": ids[(index + step) % nodes], "link_quality": 0.5 + step / 10, "rtt_ms": 12}
            for step in (1, 2)
        ]
        events.append(
            {
                "kind": "metrics",
                "node_id": node,
                "mesh_id": mesh,
                "timestamp": now.isoformat(),
                "cpu": 0.25,
                "memory": 0.5,
                "rtt_ms": 12.5,
                "packet_loss": 0.01,
                "throughput_bps": 1.5e6,
                "neighbours": neighbours,
            }
        )
    accepted = _call(client, "POST", "/v1/telemetry/events", {"events": events}, status=202)
    assert accepted["accepted"] == len(events)
    # Refused at the gateway: stamped an hour ahead.
    future = {**events[0], "timestamp": (now + timedelta(hours=1)).isoformat()}
    _call(client, "POST", "/v1/telemetry/events", {"events": [future]}, status=400)
    publish_malformed_event(kafka_bootstrap, ids[0])

    deadline = time.monotonic() + 30
    while len(_call(client, "GET", f"/v1/telemetry/nodes?mesh_id={mesh}")["nodes"]) < nodes:
        assert time.monotonic() < deadline, f"the nodes of {mesh} were not all stored in 30 s"
        time.sleep(0.25)
    _call(client, "GET", f"/v1/telemetry/nodes?mesh_id={mesh}&status=degraded")
    _call(client, "GET", f"/v1/telemetry/nodes/{ids[0]}")
    start = (now - timedelta(minutes=5)).isoformat()
    end = (now + timedelta(minutes=1)).isoformat()
    for step in (60, 10):  # from the rollups, and from the raw events
        history = _call(
            client,
            "GET",
            f"/v1/telemetry/nodes/{ids[0]}/history",
            params={"from": start, "to": end, "step": step},
        )
        assert history["points"], history
    topology = _call(client, "GET", f"/v1/telemetry/topology?mesh_id={mesh}")
    assert len(topology["links"]) == 2 * nodes, topology
    _call(client, "GET", "/v1/telemetry/nodes/never-seen-node", status=404)
    return mesh, ids


def publish_malformed_event(bootstrap: str, node: str) -> str:
    """A producer speaking Kafka directly with a broken event: the worker dead-letters it.

    Returns where it landed, ``topic/partition/offset`` (the dead letter's origin).
    """

    async def send() -> str:
        producer = AIOKafkaProducer(**connection_options(process_settings(bootstrap)), acks="all")
        await producer.start()
        try:
            sent = await producer.send_and_wait(
                telemetry.EVENTS_TOPIC,
                json.dumps({"kind": "heartbeat", "node_id": node}).encode(),
                key=node.encode(),
                headers=[(Headers.TYPE, Telemetry.HEARTBEAT.message_type.encode())],
            )
        finally:
            await producer.stop()
        return f"{sent.topic}/{sent.partition}/{sent.offset}"

    # A thread of its own: the session's event loop may be running already.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, send()).result(timeout=60)
