"""One trace per request, read off the real OTLP wire, across the gateway and a worker.

For a crypto, a RAG and a telemetry request each: the gateway's HTTP server span is
the root; its Kafka producer span is a descendant; the worker process's span has that
producer span as its parent; the worker's PostgreSQL and Redis client spans hang under
its span where the operation touches them; its reply producer span is in the trace.
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest

from tests.system.conftest import RunningService
from tests.system.traces import expect_chain, expect_consumer_of, traced_request
from x0_common.events import crypto, rag, telemetry
from x0_common.testing.otlp import OtlpReceiver, ReceivedSpan

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

POSTGRES, REDIS = frozenset({"postgresql"}), frozenset({"redis"})


def test_a_stateless_crypto_request_is_one_trace(
    client: httpx.Client, otlp: OtlpReceiver, services: dict[str, RunningService]
) -> None:
    response, root = traced_request(
        client,
        otlp,
        "POST",
        "/v1/crypto/kem/keypair",
        "/v1/crypto/kem/keypair",
        body={"algorithm": "ML-KEM-768"},
        status=200,
    )
    assert len(base64.urlsafe_b64decode(response.json()["public_key"] + "==")) == 1184
    expect_chain(otlp, root, topic=crypto.TOPIC, worker_service="x0-crypto")


def test_a_managed_key_request_traces_its_database_work(
    client: httpx.Client, otlp: OtlpReceiver, services: dict[str, RunningService]
) -> None:
    name = f"trace-{uuid.uuid4().hex[:10]}"
    _, root = traced_request(
        client,
        otlp,
        "POST",
        "/v1/crypto/keys",
        "/v1/crypto/keys",
        body={"name": name, "type": "ML-DSA-65"},
        status=201,
    )
    expect_chain(otlp, root, topic=crypto.TOPIC, worker_service="x0-crypto", databases=POSTGRES)


def test_rag_create_ingest_and_search_are_traced_through_postgres_and_redis(
    client: httpx.Client, otlp: OtlpReceiver, services: dict[str, RunningService]
) -> None:
    name = f"trace-{uuid.uuid4().hex[:10]}"
    _, created = traced_request(
        client,
        otlp,
        "POST",
        "/v1/rag/collections",
        "/v1/rag/collections",
        body={"name": name},
        status=201,
    )
    expect_chain(
        otlp, created, topic=rag.REQUESTS_TOPIC, worker_service="x0-rag", databases=POSTGRES
    )

    documents = [
        {"id": "weather", "text": "Sunny and warm weather all week in the south."},
        {"id": "files", "text": "Open a file with open() and read its lines."},
    ]
    path = f"/v1/rag/collections/{name}/documents?wait=true"
    _, ingested = traced_request(
        client,
        otlp,
        "POST",
        path,
        "/v1/rag/collections/{name}/documents",
        body={"documents": documents},
        status=200,
    )
    # The write goes through the ingest topic to the writer group: no reply, but the
    # writer's span continues the gateway's publish and holds its PostgreSQL writes.
    expect_chain(
        otlp,
        ingested,
        topic=rag.INGEST_TOPIC,
        worker_service="x0-rag",
        databases=POSTGRES,
        reply=False,
    )

    response, searched = traced_request(
        client,
        otlp,
        "POST",
        f"/v1/rag/collections/{name}/search",
        "/v1/rag/collections/{name}/search",
        body={"query": "sunny weather", "k": 1, "mode": "hybrid"},
        status=200,
    )
    assert response.json()["hits"][0]["document_id"] == "weather", response.text
    expect_chain(
        otlp,
        searched,
        topic=rag.REQUESTS_TOPIC,
        worker_service="x0-rag",
        databases=POSTGRES | REDIS,
    )


def _post_heartbeat(
    client: httpx.Client, otlp: OtlpReceiver, node: str
) -> tuple[httpx.Response, ReceivedSpan]:
    heartbeat = {
        "kind": "heartbeat",
        "node_id": node,
        "mesh_id": "mesh-trace",
        "timestamp": datetime.now(UTC).isoformat(),
        "software_version": "1.0.0",
    }
    return traced_request(
        client,
        otlp,
        "POST",
        "/v1/telemetry/events",
        "/v1/telemetry/events",
        body={"events": [heartbeat]},
        status=202,
    )


def test_a_telemetry_node_query_is_one_trace_through_redis(
    client: httpx.Client, otlp: OtlpReceiver, services: dict[str, RunningService]
) -> None:
    node = f"trace-{uuid.uuid4().hex[:10]}"
    _post_heartbeat(client, otlp, node)
    deadline = time.monotonic() + 20
    while (found := client.get(f"/v1/telemetry/nodes/{node}")).status_code == 404:
        assert time.monotonic() < deadline, f"the heartbeat of {node} was never stored"
        time.sleep(0.2)
    assert found.status_code == 200, found.text

    response, queried = traced_request(
        client,
        otlp,
        "GET",
        f"/v1/telemetry/nodes/{node}",
        "/v1/telemetry/nodes/{node_id}",
        status=200,
    )
    assert response.json()["node_id"] == node, response.text
    expect_chain(
        otlp,
        queried,
        topic=telemetry.REQUESTS_TOPIC,
        worker_service="x0-telemetry",
        databases=REDIS,
    )


def test_a_posted_telemetry_event_reaches_the_ingest_span_that_stores_it(
    client: httpx.Client, otlp: OtlpReceiver, services: dict[str, RunningService]
) -> None:
    _, posted = _post_heartbeat(client, otlp, f"trace-{uuid.uuid4().hex[:10]}")
    # No reply: the chain ends at the gateway's producer span of the event...
    chain = expect_chain(
        otlp,
        posted,
        topic=telemetry.EVENTS_TOPIC,
        worker_service="x0-telemetry",
        reply=False,
        worker=False,
    )
    assert chain.producer is not None
    # ...which the worker's batch ingest span continues, or (one span per batch of many
    # events) links to, with the batch's PostgreSQL and Redis writes under it.
    expect_consumer_of(
        otlp, chain.producer, worker_service="x0-telemetry", databases=POSTGRES | REDIS
    )
