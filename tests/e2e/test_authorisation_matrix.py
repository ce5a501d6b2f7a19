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
- another tenant's key with the route's scope     -> on a resource of the first
  tenant: exactly the answer to a name that exists nowhere (404 problem+json, or the
  empty answer of an idempotent delete or a history); on routes that name none, the
  route's own answer with the caller's data only (the column ``CROSS`` below).

The keys live in the stack's PostgreSQL, made as ``x0-gateway-admin`` makes them.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable
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
    "version": "0:9999999999",
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
    # A version the ingest log never issued (past its end) is refused at once.
    ("GET", "/v1/rag/collections/{name}/ingests/{version}"): 400,
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


# -- The column "another tenant's key" ------------------------------------------------
#
# Tenant A (the owner) makes a managed key of each kind, a collection with a document,
# and a telemetry node in a mesh. A key of tenant B with the route's scope then calls
# every contract route on A's names. Routes that name A's resource (path or body) get
# exactly what B gets for a name that exists nowhere: 404 problem+json, or for the
# idempotent deletes and a node's history, the empty answer. Routes that name none
# (stateless crypto, listings, creations) answer B as they answer anyone, with B's
# data only: A's names are not in B's listings, and B's create of A's name makes B's
# own resource. A's resource is then checked untouched, and A's own call succeeds.
# ``CROSS`` must name every contract route: a new route cannot escape this column.
# (Admin routes are operator-wide, ``admin`` spans tenants: no column for them.)


@dataclass(frozen=True)
class Owned:
    """Tenant A's resources, and what A made with them (valid request material)."""

    key: str  # X-Wing, exportable, deletable: decapsulate, encrypt, sessions, export
    peer: str  # X-Wing: the responder of sessions
    signer: str  # ML-DSA-65: sign, verify, beacons
    victim: str  # X-Wing, deletable: rotate, configure, delete (must stay unchanged)
    twin: str  # a key name B creates in its own tenant
    collection: str
    victim_collection: str
    twin_collection: str
    node: str
    mesh: str
    twin_node: str
    material: dict[str, Any]

    def renamed(self) -> Owned:
        """The same requests on names that exist in no tenant."""
        fresh = {
            name: f"absent-{uuid.uuid4().hex[:8]}"
            for name in (
                "key", "peer", "signer", "victim", "twin", "collection",
                "victim_collection", "twin_collection", "node", "mesh", "twin_node",
            )
        }  # fmt: skip
        return Owned(**fresh, material=self.material)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


Request = Callable[[Owned], tuple[str, Any]]


@dataclass(frozen=True)
class Cross:
    """One route in the column: the request on A's names, B's status, A's status
    (None: not replayed by A, the route changes A's resource)."""

    request: Request
    other: int
    owner: int | None
    names_a_resource: bool = True


def body(path: str, make: Callable[[Owned], Any] | None = None) -> Request:
    """A request on ``path`` (``{key}``-style fields of Owned filled in)."""

    def build(owned: Owned) -> tuple[str, Any]:
        url = path.format(**{f: getattr(owned, f) for f in owned.__dataclass_fields__})
        return url, None if make is None else make(owned)

    return build


M = "material"
K = "/v1/crypto/keys/{key}"
C = "/v1/rag/collections/{collection}"
STATELESS = False  # names_a_resource for routes that name no tenant resource
CROSS: dict[str, Cross] = {
    "algorithms": Cross(body("/v1/crypto/algorithms"), 200, 200, STATELESS),
    "kem_keypair": Cross(
        body("/v1/crypto/kem/keypair", lambda _: {"algorithm": "ML-KEM-768"}), 200, 200, STATELESS
    ),
    "kem_keypair_batch": Cross(
        body("/v1/crypto/kem/keypair/batch", lambda _: {"items": [{"algorithm": "ML-KEM-768"}]}),
        200,
        200,
        STATELESS,
    ),
    "kem_encapsulate": Cross(
        body("/v1/crypto/kem/encapsulate", lambda o: o.material["encapsulate"]), 200, 200, STATELESS
    ),
    "kem_encapsulate_batch": Cross(
        body("/v1/crypto/kem/encapsulate/batch", lambda o: {"items": [o.material["encapsulate"]]}),
        200,
        200,
        STATELESS,
    ),
    "kem_decapsulate": Cross(
        body("/v1/crypto/kem/decapsulate", lambda o: o.material["decapsulate"]), 200, 200, STATELESS
    ),
    "kem_decapsulate_batch": Cross(
        body("/v1/crypto/kem/decapsulate/batch", lambda o: {"items": [o.material["decapsulate"]]}),
        200,
        200,
        STATELESS,
    ),
    "signature_keypair": Cross(
        body("/v1/crypto/signatures/keypair", lambda _: {"algorithm": "ML-DSA-44"}),
        200,
        200,
        STATELESS,
    ),
    "signature_keypair_batch": Cross(
        body(
            "/v1/crypto/signatures/keypair/batch", lambda _: {"items": [{"algorithm": "ML-DSA-44"}]}
        ),
        200,
        200,
        STATELESS,
    ),
    "sign": Cross(
        body("/v1/crypto/signatures/sign", lambda o: o.material["sign"]), 200, 200, STATELESS
    ),
    "sign_batch": Cross(
        body("/v1/crypto/signatures/sign/batch", lambda o: {"items": [o.material["sign"]]}),
        200,
        200,
        STATELESS,
    ),
    "verify": Cross(
        body("/v1/crypto/signatures/verify", lambda o: o.material["verify"]), 200, 200, STATELESS
    ),
    "verify_batch": Cross(
        body("/v1/crypto/signatures/verify/batch", lambda o: {"items": [o.material["verify"]]}),
        200,
        200,
        STATELESS,
    ),
    # B's key of A's name is B's own (two resources); A's is checked unchanged.
    "create_key": Cross(
        body("/v1/crypto/keys", lambda o: {"name": o.twin, "type": "X-Wing"}), 201, None, STATELESS
    ),
    "list_keys": Cross(body("/v1/crypto/keys"), 200, 200, STATELESS),
    "read_key": Cross(body(K), 404, 200),
    "rotate_key": Cross(body("/v1/crypto/keys/{victim}/rotate", lambda _: {}), 404, None),
    "configure_key": Cross(
        body("/v1/crypto/keys/{victim}/config", lambda _: {"exportable": True}), 404, None
    ),
    # Deleting what does not exist is no error: B gets the answer of an absent name.
    "delete_key": Cross(body("/v1/crypto/keys/{victim}"), 200, None),
    "export_key": Cross(body(K + "/export"), 404, 200),
    "backup_key": Cross(body(K + "/backup"), 404, 200),
    # A's backup is bound to A's tenant: it does not open in B's.
    "restore_key": Cross(
        body("/v1/crypto/keys/restore", lambda o: {"backup": o.material["backup"]}), 400, None
    ),
    "key_decapsulate": Cross(
        body(K + "/decapsulate", lambda o: {"ciphertext": o.material["key_ciphertext"]}), 404, 200
    ),
    "key_sign": Cross(
        body("/v1/crypto/keys/{signer}/sign", lambda _: {"message": b64(b"m")}), 404, 200
    ),
    "key_verify": Cross(
        body("/v1/crypto/keys/{signer}/verify", lambda o: o.material["key_verify"]), 404, 200
    ),
    "key_encrypt": Cross(body(K + "/encrypt", lambda _: {"plaintext": b64(b"p")}), 404, 200),
    "key_decrypt": Cross(
        body(K + "/decrypt", lambda o: {"ciphertext": o.material["sealed"]}), 404, 200
    ),
    "key_rewrap": Cross(
        body(K + "/rewrap", lambda o: {"ciphertext": o.material["sealed"]}), 404, 200
    ),
    "session_initiate": Cross(
        body("/v1/crypto/sessions", lambda o: {"initiator_key": o.key, "responder_key": o.peer}),
        404,
        200,
    ),
    "session_accept": Cross(
        body(
            "/v1/crypto/sessions/accept",
            lambda o: {**o.material["accept"], "responder_key": o.peer},
        ),
        404,
        200,
    ),
    "beacon_sign": Cross(
        body("/v1/crypto/beacons/sign", lambda o: {"key_name": o.signer, "node_id": o.node}),
        404,
        200,
    ),
    # Verified with the public key it carries: no tenant resource (replays are per tenant).
    "beacon_verify": Cross(
        body("/v1/crypto/beacons/verify", lambda o: o.material["beacon"]), 200, 200, STATELESS
    ),
    "create_collection": Cross(
        body("/v1/rag/collections", lambda o: {"name": o.twin_collection}), 201, None, STATELESS
    ),
    "list_collections": Cross(body("/v1/rag/collections"), 200, 200, STATELESS),
    "get_collection": Cross(body(C), 404, 200),
    "delete_collection": Cross(body("/v1/rag/collections/{victim_collection}"), 200, None),
    "get_document": Cross(body(C + "/documents/doc-1"), 404, 200),
    "search": Cross(body(C + "/search", lambda _: {"query": "weather"}), 404, 200),
    "upsert_documents": Cross(
        body(C + "/documents", lambda _: {"documents": [{"id": "doc-2", "text": "more"}]}),
        404,
        202,
    ),
    "delete_documents": Cross(body(C + "/documents/doc-9"), 404, 202),
    "get_ingest_outcome": Cross(body(C + "/ingests/{material[version]}"), 404, 200),
    # B's node of A's id is B's own; A's node is checked unchanged.
    "publish_events": Cross(
        body("/v1/telemetry/events", lambda o: {"events": [o.material["twin_heartbeat"]]}),
        202,
        None,
        STATELESS,
    ),
    "list_nodes": Cross(body("/v1/telemetry/nodes"), 200, 200, STATELESS),
    "get_node": Cross(body("/v1/telemetry/nodes/{node}"), 404, 200),
    # A window with no points is an empty history, whoever asks: the absent name's answer.
    "node_history": Cross(body("/v1/telemetry/nodes/{node}/history"), 200, 200),
    # Likewise a mesh with no nodes of the caller's tenant: empty, as for an absent id.
    "topology": Cross(body("/v1/telemetry/topology?mesh_id={mesh}"), 200, 200),
}

ROUTED = {operation.name: operation for operation in OPERATIONS if operation.http is not None}
LISTINGS = {"list_keys": "key", "list_collections": "collection", "list_nodes": "node"}


def test_no_route_escapes_the_other_tenant_column() -> None:
    assert set(CROSS) == set(ROUTED)


@dataclass(frozen=True)
class TenantKeys:
    owner: str  # tenant A, every scope but admin
    other: dict[str, str]  # tenant B, one scope each


@pytest.fixture(scope="module")
async def tenant_keys(stack: StackEndpoints) -> TenantKeys:
    pepper = GatewaySettings().pepper()
    run = uuid.uuid4().hex[:8]
    owner = await provision_key(
        stack.postgres_dsn, pepper, tenant=f"mx-a-{run}", scopes=GRANTABLE_SCOPES - {"admin"}
    )
    other = {
        scope: (
            await provision_key(stack.postgres_dsn, pepper, tenant=f"mx-b-{run}", scopes={scope})
        ).key
        for scope in GRANTABLE_SCOPES - {"admin"}
    }
    return TenantKeys(owner.key, other)


async def send(
    client: httpx.AsyncClient, method: str, url: str, payload: Any, token: str
) -> httpx.Response:
    return await client.request(
        method, url, json=payload, headers={"Authorization": f"Bearer {token}"}
    )


@pytest.fixture(scope="module")
async def owned(anonymous: httpx.AsyncClient, tenant_keys: TenantKeys) -> Owned:
    """Tenant A's resources, made through the gateway."""
    run = uuid.uuid4().hex[:8]

    async def ok(method: str, url: str, payload: Any = None, status: int = 200) -> Any:
        response = await send(anonymous, method, url, payload, tenant_keys.owner)
        assert response.status_code == status, (url, response.text)
        return response.json()

    names = {n: f"mx-{n}-{run}" for n in ("key", "peer", "signer", "victim", "twin")}
    kinds = {"signer": "ML-DSA-65"}
    for role, name in names.items():
        options = {"exportable": True} if role == "key" else {}
        if role in {"key", "victim"}:
            options["deletion_allowed"] = True
        await ok(
            "POST", "/v1/crypto/keys",
            {"name": name, "type": kinds.get(role, "X-Wing"), **options}, 201,
        )  # fmt: skip
    m: dict[str, Any] = {}
    kem = await ok("POST", "/v1/crypto/kem/keypair", {"algorithm": "ML-KEM-768"})
    m["encapsulate"] = {"algorithm": "ML-KEM-768", "public_key": kem["public_key"]}
    sealed_kem = await ok("POST", "/v1/crypto/kem/encapsulate", m["encapsulate"])
    m["decapsulate"] = {
        "algorithm": "ML-KEM-768",
        "secret_key": kem["secret_key"],
        "ciphertext": sealed_kem["ciphertext"],
    }
    pair = await ok("POST", "/v1/crypto/signatures/keypair", {"algorithm": "ML-DSA-44"})
    m["sign"] = {"algorithm": "ML-DSA-44", "secret_key": pair["secret_key"], "message": b64(b"m")}
    signed = await ok("POST", "/v1/crypto/signatures/sign", m["sign"])
    m["verify"] = {
        "algorithm": "ML-DSA-44",
        "public_key": pair["public_key"],
        "message": b64(b"m"),
        "signature": signed["signature"],
    }
    key = await ok("GET", f"/v1/crypto/keys/{names['key']}")
    to_key = {"algorithm": "X-Wing", "public_key": key["versions"][0]["public_key"]}
    m["key_ciphertext"] = (await ok("POST", "/v1/crypto/kem/encapsulate", to_key))["ciphertext"]
    signature = await ok("POST", f"/v1/crypto/keys/{names['signer']}/sign", {"message": b64(b"m")})
    m["key_verify"] = {"message": b64(b"m"), "signature": signature["signature"]}
    m["sealed"] = (
        await ok("POST", f"/v1/crypto/keys/{names['key']}/encrypt", {"plaintext": b64(b"p")})
    )["ciphertext"]
    opened = await ok(
        "POST", "/v1/crypto/sessions",
        {"initiator_key": names["key"], "responder_key": names["peer"]},
    )  # fmt: skip
    m["accept"] = {
        field: opened[field]
        for field in ("responder_key_version", "session_id", "ciphertext", "initiator_public_key")
    }
    m["backup"] = (await ok("GET", f"/v1/crypto/keys/{names['key']}/backup"))["backup"]
    node, mesh, twin_node = f"mx-node-{run}", f"mx-mesh-{run}", f"mx-twin-node-{run}"
    beacon = await ok(
        "POST", "/v1/crypto/beacons/sign", {"key_name": names["signer"], "node_id": node}
    )
    m["beacon"] = {k: v for k, v in beacon.items() if k != "key_change_proof" or v is not None}

    collections = {
        n: f"mx-{n}-{run}" for n in ("collection", "victim_collection", "twin_collection")
    }
    for name in collections.values():
        await ok("POST", "/v1/rag/collections", {"name": name}, 201)
    document = {"id": "doc-1", "text": "The weather is lovely today."}
    upserted = await ok(
        "POST", f"/v1/rag/collections/{collections['collection']}/documents",
        {"documents": [document]}, 202,
    )  # fmt: skip
    m["version"] = upserted["version"]
    now = datetime.now(UTC).isoformat()

    def heartbeat(node_id: str, mesh_id: str) -> dict[str, Any]:
        return {"kind": "heartbeat", "node_id": node_id, "mesh_id": mesh_id, "timestamp": now,
                "status": "up", "software_version": "1.0.0"}  # fmt: skip

    await ok("POST", "/v1/telemetry/events",
             {"events": [heartbeat(node, mesh), heartbeat(twin_node, mesh)]}, 202)  # fmt: skip
    m["twin_heartbeat"] = heartbeat(twin_node, f"mx-b-mesh-{run}")
    # Wait for what is written in the background: the document and the nodes.
    deadline = asyncio.get_running_loop().time() + 30
    for url in (
        f"/v1/rag/collections/{collections['collection']}/documents/doc-1",
        f"/v1/telemetry/nodes/{node}",
        f"/v1/telemetry/nodes/{twin_node}",
    ):
        while (await send(anonymous, "GET", url, None, tenant_keys.owner)).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, url
            await asyncio.sleep(0.2)
    return Owned(**names, **collections, node=node, mesh=mesh, twin_node=twin_node, material=m)


@pytest.mark.parametrize("name", sorted(CROSS))
async def test_another_tenants_key_with_the_scope_sees_none_of_its_resources(
    anonymous: httpx.AsyncClient, tenant_keys: TenantKeys, owned: Owned, name: str
) -> None:
    case, operation = CROSS[name], ROUTED[name]
    assert operation.http is not None
    method, other = operation.http.method, tenant_keys.other[operation.scope]
    url, payload = case.request(owned)
    theirs = await send(anonymous, method, url, payload, other)
    assert theirs.status_code == case.other, theirs.text
    if theirs.status_code >= 400:
        assert theirs.headers["content-type"] == "application/problem+json"
    if case.names_a_resource:
        # Exactly what a name that exists nowhere gets: nothing tells B that A's exists.
        absent = await send(anonymous, method, *case.request(owned.renamed()), other)
        assert absent.status_code == theirs.status_code, absent.text
        if theirs.status_code >= 400:
            assert absent.json()["code"] == theirs.json()["code"]
    if case.owner is not None:
        mine = await send(anonymous, method, url, payload, tenant_keys.owner)
        assert mine.status_code == case.owner, mine.text
        if name in LISTINGS:
            resource = getattr(owned, LISTINGS[name])
            assert resource in mine.text
            assert resource not in theirs.text
    await _untouched(anonymous, tenant_keys, owned, name, theirs)


async def _untouched(
    client: httpx.AsyncClient, keys: TenantKeys, owned: Owned, name: str, theirs: httpx.Response
) -> None:
    """A's resource after B's call: as it was."""

    async def owner_get(url: str) -> Any:
        response = await send(client, "GET", url, None, keys.owner)
        assert response.status_code == 200, (url, response.text)
        return response.json()

    if name in {"rotate_key", "configure_key", "delete_key"}:
        victim = await owner_get(f"/v1/crypto/keys/{owned.victim}")
        assert (victim["latest_version"], victim["exportable"]) == (1, False)
    elif name == "create_key":
        twin = await owner_get(f"/v1/crypto/keys/{owned.twin}")
        assert twin["versions"][0]["public_key"] != theirs.json()["versions"][0]["public_key"]
    elif name == "restore_key":
        restored = await send(
            client, "GET", f"/v1/crypto/keys/{owned.key}", None, keys.other["keys:read"]
        )
        assert restored.status_code == 404
    elif name == "delete_collection":
        await owner_get(f"/v1/rag/collections/{owned.victim_collection}")
    elif name == "create_collection":
        await owner_get(f"/v1/rag/collections/{owned.twin_collection}")
    elif name == "topology":
        assert (theirs.json()["nodes"], theirs.json()["links"]) == ([], [])
        assert owned.node in str(await owner_get(f"/v1/telemetry/topology?mesh_id={owned.mesh}"))
    elif name == "publish_events":
        assert (await owner_get(f"/v1/telemetry/nodes/{owned.twin_node}"))["mesh_id"] == owned.mesh
