"""The audit trail end to end: gateway -> x0.audit (real Kafka) -> the gateway's audit
consumer -> gateway.audit_log (real PostgreSQL) -> GET /v1/audit.

Records appear for a key's creation and export (attempt and outcome, the name hidden,
no secret) and for a 401 and a 403; a gateway whose records Kafka refuses refuses a
key operation (503) and does not perform it; the filters and pages work;
the table refuses UPDATE, DELETE and TRUNCATE.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from x0_common.kafka.clients import connection_options, process_settings
from x0_common.settings import CommonSettings
from x0_common.testing import SpanCapture
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.audit.settings import AuditSettings
from x0_gateway.auth.store import CreatedApiKey
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key

pytestmark = [pytest.mark.e2e, pytest.mark.security]

# The consumer stores a record within a second or so; generous for a loaded machine.
STORED_WITHIN_SECONDS = 20.0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
async def auditor(stack: StackEndpoints) -> CreatedApiKey:
    """A key with every scope, so its records can be told from other tests'."""
    return await provision_key(
        stack.postgres_dsn, GatewaySettings().pepper(), name="audit e2e: every scope"
    )


async def records(gateway: httpx.AsyncClient, wanted: int, **filters: Any) -> list[dict[str, Any]]:
    """``GET /v1/audit`` with ``filters`` until it holds ``wanted`` records."""
    deadline = time.monotonic() + STORED_WITHIN_SECONDS
    while True:
        response = await gateway.get("/v1/audit", params=filters)
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()["records"]
        if len(found) >= wanted or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_a_key_created_and_exported_leaves_attempts_and_outcomes(
    gateway: httpx.AsyncClient, auditor: CreatedApiKey, span_capture: SpanCapture
) -> None:
    name = f"audit-{uuid.uuid4().hex[:10]}"
    headers = bearer(auditor.key)
    created = await gateway.post(
        "/v1/crypto/keys",
        json={"name": name, "type": "ML-DSA-65", "exportable": True},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    exported = await gateway.get(f"/v1/crypto/keys/{name}/export", headers=headers)
    assert exported.status_code == 200, exported.text
    secret = next(iter(exported.json()["secret_keys"].values()))

    found = await records(gateway, 4, resource=name)
    seen = sorted((r["operation"], r["stage"], r["outcome"], r["status"]) for r in found)
    assert seen == [
        ("create_key", "attempt", "attempted", None),
        ("create_key", "outcome", "succeeded", 201),
        ("export_key", "attempt", "attempted", None),
        ("export_key", "outcome", "succeeded", 200),
    ]
    for record in found:
        assert record["subject"] == f"key:{auditor.id}"
        assert record["tenant"] == "default"
        assert record["resource_type"] == "key"
        assert record["resource"].startswith("hmac-sha256:")
        assert record["client_address"]
        assert len(record["trace_id"] or "") == 32
    by_request: dict[str, set[str]] = {}
    for record in found:
        by_request.setdefault(record["request_id"], set()).add(record["stage"])
    assert list(by_request.values()) == [{"attempt", "outcome"}] * 2
    # What a record holds: these fields, never a body, a name, a key or a credential.
    text = json.dumps(found)
    for never in (name, secret, auditor.key, created.json()["versions"][0]["public_key"]):
        assert never not in text


async def test_a_401_and_a_403_are_recorded_as_denied(
    gateway: httpx.AsyncClient, stack: StackEndpoints
) -> None:
    name = f"audit-denied-{uuid.uuid4().hex[:10]}"
    narrow = await provision_key(
        stack.postgres_dsn, GatewaySettings().pepper(), scopes={"crypto"}, name="audit e2e: narrow"
    )
    anonymous = await gateway.get(f"/v1/crypto/keys/{name}/export", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    refused = await gateway.get(f"/v1/crypto/keys/{name}/export", headers=bearer(narrow.key))
    assert refused.status_code == 403

    found = await records(gateway, 2, resource=name, outcome="denied")
    seen = sorted((r["status"], r["code"], r["subject"], r["stage"]) for r in found)
    assert seen == [
        (401, "unauthenticated", None, "outcome"),
        (403, "forbidden", f"key:{narrow.id}", "outcome"),
    ]
    assert {r["operation"] for r in found} == {"export_key"}
    assert all(r["client_address"] for r in found)


async def test_the_filters_and_pages(gateway: httpx.AsyncClient, auditor: CreatedApiKey) -> None:
    name = f"audit-pages-{uuid.uuid4().hex[:10]}"
    headers = bearer(auditor.key)
    for _ in range(2):
        response = await gateway.get(f"/v1/crypto/keys/{name}", headers=headers)
        assert response.status_code == 404
    subject = f"key:{auditor.id}"
    found = await records(gateway, 4, resource=name, subject=subject)
    assert len(found) == 4
    assert {(r["operation"], r["outcome"]) for r in found} >= {("read_key", "failed")}
    assert all(r["subject"] == subject for r in found)
    times = [r["at"] for r in found]
    assert times == sorted(times, reverse=True)

    first = await gateway.get("/v1/audit", params={"resource": name, "limit": 3})
    assert first.status_code == 200
    cursor = first.json()["next_cursor"]
    assert cursor is not None
    rest = await gateway.get("/v1/audit", params={"resource": name, "limit": 3, "cursor": cursor})
    assert rest.json()["next_cursor"] is None
    ids = [r["id"] for r in first.json()["records"] + rest.json()["records"]]
    assert sorted(ids) == sorted(r["id"] for r in found)

    failed = await gateway.get("/v1/audit", params={"resource": name, "outcome": "failed"})
    assert {r["status"] for r in failed.json()["records"]} == {404}
    later = await gateway.get("/v1/audit", params={"resource": name, "since": "2999-01-01T00:00Z"})
    assert later.json()["records"] == []
    window = {"resource": name, "since": found[-1]["at"], "until": found[0]["at"]}
    bounded = await gateway.get("/v1/audit", params=window)
    assert len(bounded.json()["records"]) == 3  # the newest is excluded (until is exclusive)
    other = await gateway.get("/v1/audit", params={"resource": name, "subject": "key:nobody"})
    assert other.json()["records"] == []


@pytest.fixture
async def audit_topic(stack: StackEndpoints) -> AsyncIterator[str]:
    """A topic of the test's own for a gateway's audit records; deleted afterwards."""
    topic = f"x0.audit.refusing-{uuid.uuid4().hex[:8]}"
    yield topic
    admin = AIOKafkaAdminClient(**stack.kafka_options())
    await admin.start()
    try:
        await admin.delete_topics([topic, f"{topic}.dlq"])
    finally:
        await admin.close()


async def refuse_every_record(bootstrap: str, topic: str) -> None:
    """Make the broker refuse every record on ``topic`` (none fits in one byte)."""
    admin = AIOKafkaAdminClient(**connection_options(process_settings(bootstrap)))
    await admin.start()
    try:
        resource = ConfigResource(
            ConfigResourceType.TOPIC, topic, configs={"max.message.bytes": "1"}
        )
        await admin.alter_configs([resource])
    finally:
        await admin.close()


async def test_a_key_operation_is_refused_and_not_done_when_its_record_cannot_be_written(
    gateway: httpx.AsyncClient,
    stack: StackEndpoints,
    admin_api_key: str,
    audit_topic: str,
) -> None:
    settings = GatewaySettings(
        common=CommonSettings(kafka=stack.kafka_settings()),
        replica_id=f"e2e-audit-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=30,
        audit=AuditSettings(topic=audit_topic, write_timeout_seconds=1, consume=False),
    )
    app = create_app(settings)
    name = f"audit-refused-{uuid.uuid4().hex[:10]}"
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://gateway",
            headers=bearer(admin_api_key),
            timeout=60,
        ) as blind,
    ):
        # After the start-up, which set the topic's limits as x0 sets them.
        await refuse_every_record(stack.kafka_bootstrap, audit_topic)
        response = await blind.post("/v1/crypto/keys", json={"name": name, "type": "X-Wing"})
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["details"]["reason"] == "audit_unavailable"
        assert response.headers["retry-after"] == "1"
    # The worker never saw it: the key does not exist.
    missing = await gateway.get(f"/v1/crypto/keys/{name}")
    assert missing.status_code == 404, missing.text


async def test_the_table_refuses_update_delete_and_truncate(
    gateway: httpx.AsyncClient, stack: StackEndpoints, auditor: CreatedApiKey
) -> None:
    response = await gateway.get("/v1/crypto/keys", headers=bearer(auditor.key))
    assert response.status_code == 200
    stored, *_ = await records(gateway, 2, subject=f"key:{auditor.id}", operation="list_keys")
    connection = await asyncpg.connect(stack.postgres_dsn)
    try:
        for statement in (
            "UPDATE gateway.audit_log SET outcome = 'failed' WHERE id = $1",
            "DELETE FROM gateway.audit_log WHERE id = $1",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await connection.execute(statement, uuid.UUID(stored["id"]))
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await connection.execute("TRUNCATE gateway.audit_log")
        partitions = await connection.fetch(
            "SELECT inhrelid::regclass::text AS name FROM pg_inherits"
            " WHERE inhparent = 'gateway.audit_log'::regclass"
        )
        for partition in partitions:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
                await connection.execute(f"TRUNCATE {partition['name']}")
        kept = await connection.fetchval(
            "SELECT outcome FROM gateway.audit_log WHERE id = $1", uuid.UUID(stored["id"])
        )
        assert kept == stored["outcome"]
    finally:
        await connection.close()
