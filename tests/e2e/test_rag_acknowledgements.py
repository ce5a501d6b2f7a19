"""Ingest acknowledgements that never lie (issue 16), through the gateway, Kafka and a real
RAG worker with the real model.

- ``wait=true`` answers the outcome per document: 200 applied, 422 refused (with each
  document's reason), 202 when nothing is known before the deadline.
- What the writer would refuse is refused by the gateway first: 422 naming the
  document's index, and nothing on ``x0.rag.ingest``.
- A collection deleted while an ingest waits in the topic: ``collection_deleted``.
- Without ``wait``: 202 once Kafka holds it, and ``GET .../ingests/{version}`` tells
  the outcome later.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from x0_common.events.rag import INGEST_TOPIC
from x0_common.settings import CommonSettings
from x0_common.testing.kafka import topic_partitions
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings

pytestmark = pytest.mark.e2e

TEXT = "Kafka keeps each partition's messages in order; consumers commit their offsets."
# About 7 chunks of 512 characters.
LONG = "The writer embeds every chunk of a message in one call before it stores them. " * 40


async def new_collection(gateway: httpx.AsyncClient) -> str:
    name = f"e2e-ack-{uuid.uuid4().hex[:10]}"
    response = await gateway.post("/v1/rag/collections", json={"name": name})
    assert response.status_code == 201, response.text
    return name


async def ingest_ends(stack: StackEndpoints) -> dict[int, int]:
    """The end offset of every partition of the ingest topic."""
    partitions = await topic_partitions(stack.kafka_bootstrap, INGEST_TOPIC)
    consumer = AIOKafkaConsumer(**stack.kafka_options())
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def outcome_of(gateway: httpx.AsyncClient, name: str, version: str) -> dict[str, Any]:
    """``GET .../ingests/{version}`` until the outcome is no longer pending (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        response = await gateway.get(f"/v1/rag/collections/{name}/ingests/{version}")
        assert response.status_code == 200, response.text
        body = response.json()
        if body["status"] != "pending" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_wait_true_answers_applied_per_document_and_the_outcome_route_agrees(
    gateway: httpx.AsyncClient,
) -> None:
    name = await new_collection(gateway)
    documents = [{"id": "a", "text": TEXT}, {"id": "b", "text": TEXT + " Twice."}]
    response = await gateway.post(
        f"/v1/rag/collections/{name}/documents",
        params={"wait": "true"},
        json={"documents": documents},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "applied"
    assert body["documents"] == 2
    assert body["results"] == [
        {"index": 0, "id": "a", "status": "applied", "reason": None},
        {"index": 1, "id": "b", "status": "applied", "reason": None},
    ]
    for document_id in ("a", "b"):
        stored = await gateway.get(f"/v1/rag/collections/{name}/documents/{document_id}")
        assert stored.status_code == 200, stored.text
        assert stored.json()["version"] == body["version"]
    assert await outcome_of(gateway, name, body["version"]) == {
        "version": body["version"],
        "collection": name,
        "status": "applied",
        "refusal": None,
    }

    deleted = await gateway.delete(
        f"/v1/rag/collections/{name}/documents/a", params={"wait": "true"}
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["results"] == [
        {"index": 0, "id": "a", "status": "applied", "reason": None}
    ]


async def test_without_wait_202_means_in_kafka_and_the_outcome_comes_later(
    gateway: httpx.AsyncClient,
) -> None:
    name = await new_collection(gateway)
    accepted = await gateway.post(
        f"/v1/rag/collections/{name}/documents", json={"documents": [{"id": "x", "text": TEXT}]}
    )
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["results"] == []
    version = accepted.json()["version"]
    assert (await outcome_of(gateway, name, version))["status"] == "applied"

    # Another collection's view of that version: nothing to tell (404, not a leak).
    other = await new_collection(gateway)
    unknown = await gateway.get(f"/v1/rag/collections/{other}/ingests/{version}")
    assert unknown.status_code == 404, unknown.text
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["details"]["reason"] == "outcome_unknown"
    # A version the ingest log never issued: 400 at once.
    partition = version.split(":")[0]
    never = await gateway.get(f"/v1/rag/collections/{name}/ingests/{partition}:999999999999")
    assert never.status_code == 400, never.text
    assert never.json()["code"] == "invalid_input"


BAD_DOCUMENTS = [
    # (raw JSON of the second document, the field its error names)
    ('{"id": "nul", "text": "a\\u0000b"}', "text"),
    ('{"id": "surrogate", "text": "a\\ud800b"}', "text"),
    ('{"id": "empty", "text": ""}', "text"),
    ('{"id": "blank", "text": " \\n\\t "}', "text"),
    ('{"id": "%s", "text": "fine"}' % ("i" * 257), "id"),
    ('{"id": "nul\\u0000id", "text": "fine"}', "id"),
    ('{"id": "nan", "text": "fine", "metadata": {"score": NaN}}', "metadata"),
    ('{"id": "inf", "text": "fine", "metadata": {"score": Infinity}}', "metadata"),
    ('{"id": "meta-surrogate", "text": "fine", "metadata": {"k": "\\udc00"}}', "metadata"),
    ('{"id": "meta-nul", "text": "fine", "metadata": {"k\\u0000": 1}}', "metadata"),
    ('{"id": "meta-big", "text": "fine", "metadata": {"k": "%s"}}' % ("m" * 16_400), "metadata"),
]


@pytest.mark.parametrize(("document", "field"), BAD_DOCUMENTS)
async def test_what_the_writer_would_refuse_is_refused_at_the_gateway_unpublished(
    gateway: httpx.AsyncClient, stack: StackEndpoints, document: str, field: str
) -> None:
    name = await new_collection(gateway)
    body = f'{{"documents": [{{"id": "good", "text": "{TEXT}"}}, {document}]}}'
    before = await ingest_ends(stack)
    for wait in ("false", "true"):
        response = await gateway.post(
            f"/v1/rag/collections/{name}/documents",
            params={"wait": wait},
            content=body.encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "validation"
        # The error names the document by its index in the request, and the field.
        assert [e["loc"][:4] for e in problem["details"]["errors"]] == [
            ["body", "documents", 1, field]
        ]
    assert await ingest_ends(stack) == before, "nothing may be published"
    info = (await gateway.get(f"/v1/rag/collections/{name}")).json()
    assert info["documents"] == 0


async def test_a_collection_deleted_during_the_ingest_is_a_clear_refusal(
    gateway: httpx.AsyncClient, stack: StackEndpoints
) -> None:
    name = await new_collection(gateway)
    # About 700 chunks: keeps the writer busy on this partition for several seconds.
    busy = await gateway.post(
        f"/v1/rag/collections/{name}/documents",
        json={"documents": [{"id": f"long-{i}", "text": LONG} for i in range(100)]},
    )
    assert busy.status_code == 202, busy.text
    before = await ingest_ends(stack)
    waiting = asyncio.create_task(
        gateway.post(
            f"/v1/rag/collections/{name}/documents",
            params={"wait": "true"},
            json={"documents": [{"id": "late", "text": TEXT}, {"id": "later", "text": TEXT}]},
        )
    )
    # Once the waiting ingest is in Kafka (behind the busy one), delete the collection.
    deadline = time.monotonic() + 30
    while await ingest_ends(stack) == before and not waiting.done():
        assert time.monotonic() < deadline, "the ingest was never published"
        await asyncio.sleep(0.05)
    deleted = await gateway.delete(f"/v1/rag/collections/{name}")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted"] is True

    response = await waiting
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "ingest_refused"
    details = problem["details"]
    assert details["status"] == "refused"
    assert [(r["index"], r["id"], r["status"]) for r in details["results"]] == [
        (0, "late", "refused"),
        (1, "later", "refused"),
    ]
    assert {r["reason"]["code"] for r in details["results"]} == {"collection_deleted"}

    # The outcome route tells the same (as the worker recorded it), and nothing was stored.
    recorded = await outcome_of(gateway, name, details["version"])
    assert recorded["status"] == "refused"
    assert recorded["refusal"]["code"] == "collection_not_found"
    busy_outcome = await outcome_of(gateway, name, busy.json()["version"])
    assert busy_outcome["status"] == "refused"
    missing = await gateway.get(f"/v1/rag/collections/{name}/documents/late")
    assert missing.status_code == 404


@pytest.fixture
async def hasty_gateway(
    stack: StackEndpoints, admin_api_key: str, rag_worker: int
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway of this test's own that waits at most 2 s for anything."""
    settings = GatewaySettings(
        common=CommonSettings(kafka=stack.kafka_settings()),
        replica_id=f"e2e-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=2,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            timeout=30,
            headers={"Authorization": f"Bearer {admin_api_key}"},
        ) as client,
    ):
        yield client


async def test_an_outcome_not_known_before_the_deadline_is_202_pending(
    hasty_gateway: httpx.AsyncClient,
) -> None:
    name = await new_collection(hasty_gateway)
    busy = await hasty_gateway.post(
        f"/v1/rag/collections/{name}/documents",
        json={"documents": [{"id": f"long-{i}", "text": LONG} for i in range(100)]},
    )
    assert busy.status_code == 202, busy.text
    started = time.monotonic()
    response = await hasty_gateway.post(
        f"/v1/rag/collections/{name}/documents",
        params={"wait": "true"},
        json={"documents": [{"id": "queued", "text": TEXT}]},
    )
    assert time.monotonic() - started < 5
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "pending"
    assert body["results"] == [{"index": 0, "id": "queued", "status": "pending", "reason": None}]
    # The token still tells the outcome once the writer gets there.
    deadline = time.monotonic() + 60
    while True:
        outcome = await hasty_gateway.get(f"/v1/rag/collections/{name}/ingests/{body['version']}")
        if outcome.status_code == 200 and outcome.json()["status"] != "pending":
            break
        assert time.monotonic() < deadline, outcome.text
        await asyncio.sleep(0.5)
    assert outcome.json()["status"] == "applied"
