"""One trace per request, read back from Jaeger: what an operator finds in its UI.

The services export to a real Jaeger v2 (in-memory storage); each test sends a request
through the gateway process and reads the trace back through Jaeger's query API
(``/api/v3/traces``): the gateway's HTTP server span is the root, its Kafka producer
span is under it, the worker's processing span continues that producer span in the
worker's process, and the worker's reply producer span is in the same trace, each under
its service's name (``x0-gateway``, ``x0-crypto``, ``x0-rag``).
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

from tests.jaeger.jaeger import Jaeger
from tests.system.conftest import RunningService
from tests.system.traces import GATEWAY, Chain, find_chain
from tests.system.traffic import weather_collection
from x0_common.events import crypto, rag
from x0_common.testing.otlp import ReceivedSpan

# The first test waits for the Jaeger build when it is not cached yet.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

POSTGRES, REDIS = frozenset({"postgresql"}), frozenset({"redis"})
WAIT_SECONDS = 30.0


def traced(
    jaeger: Jaeger,
    client: httpx.Client,
    method: str,
    path: str,
    route: str,
    *,
    status: int,
    body: Any = None,
) -> tuple[httpx.Response, ReceivedSpan]:
    """Send one request to the gateway; its response and the root span Jaeger stored
    for it (the gateway's server span for ``route`` that started while it was in flight)."""
    started = time.time_ns()
    response = client.request(method, path, json=body)
    finished = time.time_ns()
    assert response.status_code == status, f"{method} {path}: {response.text}"

    def root() -> ReceivedSpan | None:
        return next(
            (
                span
                for span in jaeger.find(GATEWAY, started, finished)
                if span.service == GATEWAY
                and span.kind is SpanKind.SERVER
                and span.attributes.get("http.route") == route
                and started <= span.start_ns <= finished
            ),
            None,
        )

    return response, jaeger.wait_for(
        root, timeout=WAIT_SECONDS, what=f"the gateway's server span of {method} {route}"
    )


def chain_in_jaeger(
    jaeger: Jaeger,
    root: ReceivedSpan,
    *,
    topic: str,
    worker_service: str,
    databases: frozenset[str] = frozenset(),
) -> Chain:
    """Wait until Jaeger holds ``root``'s whole chain through ``topic`` and ``worker_service``
    (reply included); fail naming what is missing, with the trace as Jaeger returns it."""

    def complete() -> Chain | None:
        chain = find_chain(jaeger.trace(root.trace_id), root, topic, worker_service)
        return None if chain.problems(databases=databases, reply=True) else chain

    try:
        return jaeger.wait_for(complete, timeout=WAIT_SECONDS, what=f"trace {root.trace_id}")
    except AssertionError:
        chain = find_chain(jaeger.trace(root.trace_id), root, topic, worker_service)
        problems = "\n  - ".join(chain.problems(databases=databases, reply=True))
        raise AssertionError(
            f"{root.name}: Jaeger's trace {root.trace_id} is incomplete after "
            f"{WAIT_SECONDS:.0f} s:\n  - {problems}\ntrace:\n{chain.render()}"
        ) from None


def assert_one_trace_across(chain: Chain, worker_service: str) -> None:
    spans = [chain.root, chain.producer, chain.worker, chain.reply]
    assert all(span is not None for span in spans)
    assert {span.trace_id for span in spans if span is not None} == {chain.root.trace_id}
    assert [span.service for span in spans if span is not None] == [
        GATEWAY,
        GATEWAY,
        worker_service,
        worker_service,
    ]


def test_jaeger_holds_a_crypto_request_as_one_trace(
    jaeger: Jaeger, client: httpx.Client, services: dict[str, RunningService]
) -> None:
    response, root = traced(
        jaeger,
        client,
        "POST",
        "/v1/crypto/kem/keypair",
        "/v1/crypto/kem/keypair",
        body={"algorithm": "ML-KEM-768"},
        status=200,
    )
    assert len(base64.urlsafe_b64decode(response.json()["public_key"] + "==")) == 1184
    chain = chain_in_jaeger(jaeger, root, topic=crypto.TOPIC, worker_service="x0-crypto")
    assert_one_trace_across(chain, "x0-crypto")


def test_jaeger_holds_a_rag_search_as_one_trace_through_postgres_and_redis(
    jaeger: Jaeger, client: httpx.Client, services: dict[str, RunningService]
) -> None:
    name = f"jaeger-{uuid.uuid4().hex[:10]}"
    weather_collection(client, name)

    response, root = traced(
        jaeger,
        client,
        "POST",
        f"/v1/rag/collections/{name}/search",
        "/v1/rag/collections/{name}/search",
        body={"query": "sunny weather", "k": 1, "mode": "hybrid"},
        status=200,
    )
    assert response.json()["hits"][0]["document_id"] == "weather", response.text
    chain = chain_in_jaeger(
        jaeger,
        root,
        topic=rag.REQUESTS_TOPIC,
        worker_service="x0-rag",
        databases=POSTGRES | REDIS,
    )
    assert_one_trace_across(chain, "x0-rag")


def test_jaeger_lists_every_service_by_its_name(
    jaeger: Jaeger, client: httpx.Client, services: dict[str, RunningService]
) -> None:
    # A request through each worker, so each has spans (the tests above may run alone).
    keypair = client.post("/v1/crypto/kem/keypair", json={"algorithm": "ML-KEM-768"})
    assert keypair.status_code == 200, keypair.text
    collection = client.post("/v1/rag/collections", json={"name": f"j-{uuid.uuid4().hex[:8]}"})
    assert collection.status_code == 201, collection.text
    node = client.get(f"/v1/telemetry/nodes/jaeger-{uuid.uuid4().hex[:8]}")
    assert node.status_code == 404, node.text
    expected = {"x0-gateway", "x0-crypto", "x0-rag", "x0-telemetry"}
    found = jaeger.wait_for(
        lambda: names if expected <= (names := set(jaeger.services())) else None,
        timeout=WAIT_SECONDS,
        what=f"the services {sorted(expected)}",
    )
    # Nothing else exports to it: no stray names (a default "unknown_service").
    assert found == expected, found
