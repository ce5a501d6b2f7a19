"""The authorisation matrix: every route of the gateway, with every kind of credential.

The routes are generated from the contract (``x0_common.contract.OPERATIONS``, every
row with an HTTP binding), the admin router and the audit router, and a test checks that the app has
no other route outside ``/health``: a new route cannot escape the matrix. Each route
is called with

- no credentials                                  -> 401, bare ``Bearer`` challenge
- a malformed key, an unknown well-formed key     -> 401 ``invalid_token``
- a revoked key, an expired key (every scope)     -> 401 ``invalid_token``
- a valid key with every scope but the route's    -> 403 ``insufficient_scope``
- a key with the route's scope only               -> the route's own answer to an
  empty request: 422 when the body or query has required fields, else 404 for a
  path naming nothing, else the route's success status (from the real workers).

The keys live in the stack's PostgreSQL, made as ``x0-gateway-admin`` makes them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from x0_common.contract import OPERATIONS
from x0_common.principal import GRANTABLE_SCOPES
from x0_common.settings import CommonSettings, PostgresSettings
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.auth import apikeys
from x0_gateway.routes import admin, audit
from x0_gateway.routing import carried_fields
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key

pytestmark = [pytest.mark.e2e, pytest.mark.security]

MISSING = 'Bearer realm="x0"'
INVALID = 'Bearer realm="x0", error="invalid_token"'
# Path values that name nothing that exists.
PLACEHOLDERS = {
    "name": "matrix-absent",
    "document_id": "matrix-absent",
    "node_id": "matrix-absent",
    "key_id": "00000000-0000-4000-8000-000000000000",
}


@dataclass(frozen=True)
class Route:
    """One route of the matrix: how to call it, its scope, its answer to an empty call."""

    method: str
    path: str
    scope: str
    expected: int

    @property
    def url(self) -> str:
        url = self.path
        for name, value in PLACEHOLDERS.items():
            url = url.replace(f"{{{name}}}", value)
        return url


# Routes whose answer to an empty call the rule below does not give, and why.
ANSWERS: dict[tuple[str, str], int] = {
    # Deleting what does not exist is no error (a retried delete must not fail).
    ("DELETE", "/v1/crypto/keys/{name}"): 200,
    ("DELETE", "/v1/rag/collections/{name}"): 200,
    # The window defaults to the last hour; a node never seen has no points in it.
    ("GET", "/v1/telemetry/nodes/{node_id}/history"): 200,
}


def contract_routes() -> list[Route]:
    routes = []
    for operation in OPERATIONS:
        http = operation.http
        if http is None:
            continue
        carried = carried_fields(operation)
        if carried is not None and any(f.is_required() for f in carried.model_fields.values()):
            expected = 422
        elif http.path_parameters:
            expected = 404
        else:
            expected = http.status
        expected = ANSWERS.get((http.method, http.path), expected)
        routes.append(Route(http.method, http.path, operation.scope, expected))
    return routes


ADMIN_ROUTES = [
    Route("POST", "/v1/admin/tenants", "admin", 422),
    Route("GET", "/v1/admin/tenants", "admin", 200),
    Route("POST", "/v1/admin/keys", "admin", 422),
    Route("GET", "/v1/admin/keys", "admin", 200),
    Route("DELETE", "/v1/admin/keys/{key_id}", "admin", 404),
]
AUDIT_ROUTES = [Route("GET", "/v1/audit", "admin", 200)]
ROUTES = contract_routes() + ADMIN_ROUTES + AUDIT_ROUTES


@dataclass(frozen=True)
class Keys:
    """The credentials of the matrix."""

    by_scope: dict[str, str]  # the scope alone
    all_but: dict[str, str]  # every grantable scope but this one
    revoked: str
    expired: str


@pytest.fixture(scope="module")
async def keys(stack: StackEndpoints) -> Keys:
    pepper = GatewaySettings().pepper()
    dsn = stack.postgres_dsn

    async def key(scopes: set[str], name: str, **options: Any) -> str:
        return (await provision_key(dsn, pepper, scopes=scopes, name=name, **options)).key

    by_scope = {scope: await key({scope}, f"matrix: {scope}") for scope in GRANTABLE_SCOPES}
    all_but = {
        scope: await key(GRANTABLE_SCOPES - {scope}, f"matrix: all but {scope}")
        for scope in GRANTABLE_SCOPES
    }
    revoked = await provision_key(dsn, pepper, name="matrix: revoked")
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            "UPDATE gateway.api_keys SET revoked_at = now() WHERE id = $1", revoked.id
        )
    finally:
        await connection.close()
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    expired = await key(set(GRANTABLE_SCOPES), "matrix: expired", expires_at=expires_at)
    await asyncio.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.1)
    return Keys(by_scope, all_but, revoked.key, expired)


@pytest.fixture(scope="module")
async def matrix_app(
    stack: StackEndpoints, crypto_worker: int, rag_worker: int, telemetry_worker: int
) -> AsyncIterator[FastAPI]:
    """A gateway in process, on the real broker and workers; clients bring their own
    credentials (none by default)."""
    settings = GatewaySettings(
        common=CommonSettings(
            kafka=stack.kafka_settings(), postgres=PostgresSettings(dsn=stack.postgres_dsn)
        ),
        replica_id=f"e2e-matrix-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=30,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture(scope="module")
async def anonymous(matrix_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=matrix_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=60) as c:
        yield c


def test_no_route_escapes_the_matrix(matrix_app: FastAPI) -> None:
    # Every route the app documents (FastAPI lists included routers lazily, so the
    # OpenAPI document is the public list of them), health apart.
    served = {
        (method.upper(), path)
        for path, methods in matrix_app.openapi()["paths"].items()
        if not path.startswith("/health/")
        for method in methods
    }
    covered = {(route.method, route.path) for route in ROUTES}
    assert served == covered
    for listed, router in ((ADMIN_ROUTES, admin.router), (AUDIT_ROUTES, audit.router)):
        assert {(r.method, r.path) for r in listed} == {
            (method, route.path)
            for route in router.routes
            if isinstance(route, APIRoute)
            for method in route.methods
        }


async def call(client: httpx.AsyncClient, route: Route, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    body = {} if route.method in {"POST", "PUT", "PATCH"} else None
    return await client.request(route.method, route.url, json=body, headers=headers)


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
async def test_each_route_answers_each_credential_as_it_must(
    anonymous: httpx.AsyncClient, keys: Keys, route: Route
) -> None:
    unknown = apikeys.new_key()
    malformed = unknown[:-1] + ("0" if unknown[-1] != "0" else "1")  # checksum broken
    cases: dict[str, tuple[str | None, int, str | None]] = {
        "no credentials": (None, 401, MISSING),
        "malformed key": (malformed, 401, INVALID),
        "unknown key": (unknown, 401, INVALID),
        "revoked key": (keys.revoked, 401, INVALID),
        "expired key": (keys.expired, 401, INVALID),
        "key without the scope": (
            keys.all_but[route.scope],
            403,
            f'Bearer realm="x0", error="insufficient_scope", scope="{route.scope}"',
        ),
        "key with the scope": (keys.by_scope[route.scope], route.expected, None),
    }
    seen: dict[str, tuple[int, str | None]] = {}
    wanted: dict[str, tuple[int, str | None]] = {}
    for case, (token, status, challenge) in cases.items():
        response = await call(anonymous, route, token)
        seen[case] = (response.status_code, response.headers.get("www-authenticate"))
        wanted[case] = (status, challenge)
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json", case
    assert seen == wanted
