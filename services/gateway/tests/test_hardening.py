"""The edge refuses what must not reach the workers, and every answer is hardened.

405 names every allowed method; CORS is off unless origins are configured; every
response carries the security headers; values PostgreSQL cannot store (int4
overflow, NUL) are 422 before anything is published.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from x0_common.settings import KafkaSettings
from x0_gateway.app import create_app
from x0_gateway.limits.install import close_limits
from x0_gateway.limits.policy import RateLimitSettings
from x0_gateway.problems import PROBLEM_JSON
from x0_gateway.settings import GatewaySettings

from .http_support import unit_settings
from .limits_support import authenticate_by_test_headers

pytestmark = pytest.mark.unit

INT4_OVERFLOW = 2**31


def settings(**overrides: object) -> GatewaySettings:
    """An unroutable broker (nothing may reach Kafka) and no rate limits (no Redis)."""
    return unit_settings(
        rate_limits=RateLimitSettings(enabled=False),
        **overrides,  # type: ignore[arg-type]
    )


async def client_for(gateway: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    app = authenticate_by_test_headers(create_app(gateway))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gateway"
    ) as client:
        yield client
    await close_limits(app)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(settings()):
        yield client


async def test_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/v1/crypto/keys/node-a")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["code"] == "method_not_allowed"
    # GET (read) and DELETE are two routes of one path: both are named.
    assert response.headers["allow"] == "GET, DELETE"


async def test_every_answer_carries_the_security_headers(client: httpx.AsyncClient) -> None:
    for response in [
        await client.get("/health/live"),
        await client.get("/no/such/route"),
        await client.post("/v1/crypto/signatures/sign", json={}),
    ]:
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "default-src 'none'" in response.headers["content-security-policy"]


async def test_docs_still_work_and_cannot_be_framed(client: httpx.AsyncClient) -> None:
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.text
    # Swagger UI's own scripts still run; only framing is refused.
    assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert docs.headers["x-frame-options"] == "DENY"
    schema = await client.get("/openapi.json")
    assert schema.status_code == 200
    parameters = schema.json()["paths"]["/v1/crypto/keys"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in parameters)


@pytest.mark.security
async def test_cors_is_off_unless_configured(client: httpx.AsyncClient) -> None:
    preflight = await client.options(
        "/v1/crypto/algorithms",
        headers={"origin": "https://evil.example", "access-control-request-method": "GET"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    answered = await client.get("/health/live", headers={"origin": "https://evil.example"})
    assert "access-control-allow-origin" not in answered.headers


async def test_cors_allows_the_configured_origins_only() -> None:
    async for client in client_for(settings(cors_origins=["https://console.example"])):
        allowed = await client.options(
            "/v1/crypto/keys",
            headers={
                "origin": "https://console.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, idempotency-key",
            },
        )
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://console.example"
        other = await client.options(
            "/v1/crypto/keys",
            headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
        )
        assert "access-control-allow-origin" not in other.headers


# (method, path, body or query) that overflow int4 or hold NUL; all refused with 422.
REFUSED = [
    (
        "POST",
        "/v1/crypto/keys",
        {"name": "k", "type": "X-Wing", "auto_rotate_period_seconds": INT4_OVERFLOW},
    ),
    ("PATCH", "/v1/crypto/keys/k/config", {"auto_rotate_period_seconds": INT4_OVERFLOW}),
    ("GET", f"/v1/crypto/keys/k/export?version={INT4_OVERFLOW}", None),
    ("POST", "/v1/crypto/keys/k/sign", {"message": "AA", "version": INT4_OVERFLOW}),
    ("POST", "/v1/rag/collections/docs/search", {"query": "key\u0000word", "mode": "keyword"}),
    (
        "POST",
        "/v1/rag/collections/docs/documents",
        {"documents": [{"id": "d", "text": "a\u0000b"}]},
    ),
    ("POST", "/v1/rag/collections/docs/documents", {"documents": [{"id": "d\u0000", "text": "t"}]}),
    ("GET", "/v1/rag/collections/docs/documents/d%00", None),
]


@pytest.mark.security
@pytest.mark.parametrize(("method", "path", "body"), REFUSED)
async def test_values_postgresql_cannot_store_are_422(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    body: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    response = await client.request(method, path, json=body)
    # Issue 11's finding: these were 500s whose asyncpg error wrote the input to the log.
    logged = "\n".join(
        record.getMessage()
        for record in caplog.records
        if not record.name.startswith(("httpx", "httpcore"))  # the test's own client
    )
    assert str(INT4_OVERFLOW) not in logged
    assert "\x00" not in logged
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    (error,) = response.json()["details"]["errors"]
    assert error["type"] in {"less_than_equal", "nul_character"}
    # The refused value is not echoed back.
    details = json.dumps(response.json()["details"])
    assert str(INT4_OVERFLOW) not in details.replace("2147483647", "")
    assert "\\u0000" not in details


@pytest.mark.security
async def test_a_streamed_body_over_the_limit_is_413_not_400() -> None:
    """No Content-Length: the body is counted as it arrives, and refused as too large."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b" " * 100

    async for client in client_for(settings(max_body_bytes=1000)):
        response = await client.post(
            "/v1/crypto/signatures/sign",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json()["code"] == "too_large"


@pytest.mark.security
def test_the_body_limit_may_not_exceed_what_kafka_carries() -> None:
    with pytest.raises(ValueError, match="exceeds what Kafka carries"):
        settings(max_body_bytes=KafkaSettings().max_payload_bytes + 1)
