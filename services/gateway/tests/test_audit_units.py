"""The audit trail's parts that need no broker: what is audited, what a record can
hold, how names are hidden, the months of the partitions, and the middleware's
records (written through a stand-in requester that keeps them)."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel

from x0_common.contract import OPERATIONS, Rag
from x0_common.events.audit import AuditRecord
from x0_gateway.app import create_app
from x0_gateway.audit.log import month_of, month_of_partition, next_month, partition_name
from x0_gateway.audit.middleware import outcome_of
from x0_gateway.audit.policy import audited, hide
from x0_gateway.audit.setup import audited_routes
from x0_gateway.auth.authenticator import Authenticator
from x0_gateway.auth.key_verifier import ApiKeyVerifier
from x0_gateway.routes import admin
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import audit_through, authenticate_as

from .http_support import in_process_client, unit_settings

pytestmark = pytest.mark.unit


def test_every_key_row_and_the_collection_writes_are_audited_and_nothing_else() -> None:
    chosen = {op.name for op in OPERATIONS if op.http is not None and audited(op)}
    keys = {op.name for op in OPERATIONS if op.http is not None and op.scope.startswith("keys:")}
    assert chosen == keys | {Rag.COLLECTION_CREATE.name, Rag.COLLECTION_DELETE.name}
    routes = audited_routes()
    assert set(admin.AUDITED) == {
        r.operation_id for r in admin.router.routes if isinstance(r, APIRoute)
    }
    assert set(routes) == chosen | set(admin.AUDITED) | {"audit_list"}


def test_a_record_has_no_field_for_a_body_or_a_secret() -> None:
    assert set(AuditRecord.model_fields) == {
        "id", "request_id", "at", "stage", "operation", "outcome", "status", "code",
        "tenant", "subject", "resource_type", "resource", "trace_id", "client_address",
    }  # fmt: skip


def test_names_are_hidden_by_a_keyed_digest() -> None:
    one, other = bytes(32), bytes(range(32))
    assert hide(one, "payments") == hide(one, "payments")
    assert hide(one, "payments") != hide(other, "payments")
    assert hide(one, "payments").startswith("hmac-sha256:")
    assert "payments" not in hide(one, "payments")


def test_partitions_are_months_named_by_digits() -> None:
    assert month_of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == date(2026, 12, 1)
    assert next_month(date(2026, 12, 1)) == date(2027, 1, 1)
    assert partition_name(date(2026, 5, 1)) == "audit_log_y2026m05"
    assert month_of_partition("audit_log_y2026m05") == date(2026, 5, 1)
    assert month_of_partition("audit_log") is None
    assert month_of_partition("audit_log_y2026m13") is None


class Keeper:
    """A requester that keeps what is published."""

    def __init__(self) -> None:
        self.published: list[tuple[str, BaseModel, str | None]] = []

    async def publish(self, topic: str, _type: str, payload: BaseModel, **options: Any) -> str:
        self.published.append((topic, payload, options.get("key")))
        return "0:0"


@pytest.fixture
async def kept() -> AsyncIterator[tuple[httpx.AsyncClient, Keeper]]:
    settings = unit_settings()
    app = create_app(settings)
    # No store behind it: the requests here carry no credentials.
    keys = ApiKeyVerifier(None, settings.pepper(), cache_seconds=1, refuse_development_keys=False)  # type: ignore[arg-type]
    app.state.authenticator = Authenticator(keys, None)
    keeper = Keeper()
    audit_through(app, keeper)
    async with in_process_client(app) as client:
        yield client, keeper


async def test_a_401_is_recorded_as_denied_without_a_principal(
    kept: tuple[httpx.AsyncClient, Keeper],
) -> None:
    client, keeper = kept
    response = await client.get("/v1/crypto/keys/payments/export")
    assert response.status_code == 401
    ((topic, record, key),) = keeper.published
    assert topic == "x0.audit"
    assert key is None
    assert isinstance(record, AuditRecord)
    assert (record.stage, record.outcome, record.status, record.code) == (
        "outcome", "denied", 401, "unauthenticated",
    )  # fmt: skip
    assert (record.operation, record.resource_type) == ("export_key", "key")
    assert record.resource == hide(GatewaySettings().audit.key(), "payments")
    assert (record.tenant, record.subject) == (None, None)
    assert record.client_address == "127.0.0.1"
    uuid.UUID(str(record.request_id))


async def test_unaudited_routes_leave_no_record_unless_refused(
    kept: tuple[httpx.AsyncClient, Keeper],
) -> None:
    client, keeper = kept
    assert (await client.get("/health/live")).status_code == 200
    assert (await client.get("/no/such/route")).status_code == 404
    assert keeper.published == []


class BlockingRequester(Keeper):
    """Keeps audit records; holds every Kafka request until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def request_raw(self, *_: object, **__: object) -> bytes:
        self.entered.set()
        await self.release.wait()
        return b'{"algorithms": []}'


def limited_app(**overrides: Any) -> tuple[FastAPI, BlockingRequester]:
    """The gateway with the given limits, every request taken as an admin's (the
    refusals below come before authentication anyway), records kept."""
    settings = unit_settings(
        **overrides,
    )
    app = create_app(settings)
    authenticate_as(app)
    requester = BlockingRequester()
    app.state.requester = requester
    audit_through(app, requester)
    return app, requester


# A body the records must never hold.
SECRET_MESSAGE = base64.urlsafe_b64encode(b"do not record me " * 80).decode()


def denial(record: BaseModel, status: int, code: str, operation: str) -> None:
    assert isinstance(record, AuditRecord)
    assert (record.stage, record.outcome, record.status, record.code) == (
        "outcome", "denied", status, code,
    )  # fmt: skip
    assert record.operation == operation
    assert (record.tenant, record.subject) == (None, None)  # refused before authentication
    assert SECRET_MESSAGE[:40] not in record.model_dump_json()


@pytest.mark.security
async def test_a_body_over_the_limit_is_recorded_as_denied_without_its_content() -> None:
    app, requester = limited_app(max_body_bytes=1000)

    async def chunks() -> AsyncIterator[bytes]:
        body = json.dumps({"message": SECRET_MESSAGE}).encode()
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    async with in_process_client(app) as client:
        declared = await client.post(
            "/v1/crypto/keys/payments/sign", json={"message": SECRET_MESSAGE}
        )
        streamed = await client.post(
            "/v1/crypto/signatures/sign",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        unrouted = await client.post("/no/such/route", json={"message": SECRET_MESSAGE})
    assert [r.status_code for r in (declared, streamed, unrouted)] == [413, 413, 413]
    records = [record for _, record, _ in requester.published]
    assert len(records) == 3
    denial(records[0], 413, "too_large", "key_sign")
    assert (records[0].resource_type, records[0].resource) == (
        "key", hide(GatewaySettings().audit.key(), "payments"),
    )  # fmt: skip
    denial(records[1], 413, "too_large", "sign")
    denial(records[2], 413, "too_large", "unrouted")


@pytest.mark.security
async def test_a_request_past_the_concurrency_limit_is_recorded_as_denied() -> None:
    app, requester = limited_app(connections={"max_concurrent_requests": 1})
    async with in_process_client(app) as client:
        held = asyncio.create_task(client.get("/v1/crypto/algorithms"))
        await asyncio.wait_for(requester.entered.wait(), 5)
        refused = await client.post(
            "/v1/crypto/keys/payments/sign", json={"message": SECRET_MESSAGE}
        )
        requester.release.set()
        answered = await held
    assert (refused.status_code, answered.status_code) == (503, 200)
    assert refused.json()["code"] == "overloaded"
    # The held request is not audited (algorithms is no audited row, and it succeeded).
    ((_, record, _),) = requester.published
    denial(record, 503, "overloaded", "key_sign")
    assert record.resource == hide(GatewaySettings().audit.key(), "payments")
    assert record.client_address == "127.0.0.1"


@pytest.mark.security
async def test_other_503s_are_failures_not_denials() -> None:
    assert outcome_of(503, "unavailable") == "failed"
    assert outcome_of(503, "overloaded") == "denied"
    assert outcome_of(413, "too_large") == "denied"
    assert outcome_of(422, "validation") == "failed"
