"""Tenants and API keys in the real PostgreSQL: the store, revocation across two
gateway replicas, last use, the production start-up check, x0-gateway-admin, and
credentials of unknown or disabled tenants."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from x0_common.errors import Conflict, InvalidInput, NotFound
from x0_common.settings import CommonSettings, PostgresSettings
from x0_common.testing.stack import StackEndpoints
from x0_gateway import admin_cli
from x0_gateway.app import create_app
from x0_gateway.auth.setup import DevelopmentKeyInProduction, open_key_store
from x0_gateway.auth.store import ApiKeyStore
from x0_gateway.settings import GatewaySettings, JwtSettings
from x0_gateway.testing import provision_key

from .test_oidc import AUDIENCE, ISSUER, Signer

pytestmark = [pytest.mark.integration, pytest.mark.security]


def settings_for(dsn: str, stack: StackEndpoints, **overrides: object) -> GatewaySettings:
    return GatewaySettings(
        common=CommonSettings(kafka=stack.kafka_settings(), postgres=PostgresSettings(dsn=dsn)),
        replica_id=f"auth-{uuid.uuid4().hex[:8]}",
        **overrides,
    )


@pytest.fixture
async def database(stack: StackEndpoints) -> AsyncIterator[str]:
    """A PostgreSQL database of this test's own (its DSN), dropped afterwards."""
    name = f"x0_auth_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield urllib.parse.urlsplit(stack.postgres_dsn)._replace(path=f"/{name}").geturl()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def store(database: str, stack: StackEndpoints) -> AsyncIterator[ApiKeyStore]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    assert pool is not None
    try:
        yield await open_key_store(settings_for(database, stack), pool)
    finally:
        await pool.close()


async def test_the_store_keeps_tenants_and_keys_but_never_secrets(
    store: ApiKeyStore, database: str
) -> None:
    assert [tenant.id for tenant in await store.list_tenants()] == ["default"]
    await store.create_tenant("acme", "Acme")
    with pytest.raises(Conflict):
        await store.create_tenant("acme", "Acme again")
    with pytest.raises(NotFound):
        await store.create_key(name="k", tenant="nobody", scopes=["crypto"])
    with pytest.raises(InvalidInput):
        await store.create_key(name="k", tenant="acme", scopes=["internal"])
    created = await store.create_key(name="k", tenant="acme", scopes=["rag:read", "crypto"])
    assert created.key.startswith("x0_live_")
    assert created.scopes == ["crypto", "rag:read"]
    (listed,) = await store.list_keys("acme")
    assert "key" not in listed.model_dump()
    connection = await asyncpg.connect(database)
    try:
        row = await connection.fetchrow("SELECT * FROM gateway.api_keys")
    finally:
        await connection.close()
    assert row is not None
    assert created.key not in json.dumps({k: str(v) for k, v in dict(row).items()})
    first = await store.revoke_key(created.id)
    again = await store.revoke_key(created.id)
    assert first.revoked_at is not None
    assert again.revoked_at == first.revoked_at
    with pytest.raises(NotFound):
        await store.revoke_key(uuid.uuid4())


@pytest.fixture
async def replicas(database: str, stack: StackEndpoints) -> AsyncIterator[list[FastAPI]]:
    """Two gateway replicas on one database (their lifespans run)."""
    async with AsyncExitStack() as running:
        apps = [create_app(settings_for(database, stack)) for _ in range(2)]
        for app in apps:
            await running.enter_async_context(app.router.lifespan_context(app))
        yield apps


def client(app: FastAPI, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://gateway",
        headers={"Authorization": f"Bearer {key}"},
    )


async def test_a_revocation_reaches_every_replica_within_five_seconds(
    replicas: list[FastAPI], database: str, stack: StackEndpoints
) -> None:
    pepper = settings_for(database, stack).pepper()
    operator = await provision_key(database, pepper, scopes=["admin"], name="operator")
    doomed = await provision_key(database, pepper, scopes=["admin"], name="doomed")
    first, second = replicas
    async with client(first, operator.key) as on_first, client(second, doomed.key) as on_second:
        # The doomed key is cached on the second replica.
        assert (await on_second.get("/v1/admin/tenants")).status_code == 200
        revoked = await on_first.delete(f"/v1/admin/keys/{doomed.id}")
        assert revoked.status_code == 200, revoked.text
        started = time.monotonic()
        async with client(first, doomed.key) as doomed_on_first:
            # The replica that revoked it refuses it at once.
            assert (await doomed_on_first.get("/v1/admin/tenants")).status_code == 401
        while (await on_second.get("/v1/admin/tenants")).status_code == 200:
            assert time.monotonic() - started < 5.0, "still accepted after 5 s"
            await asyncio.sleep(0.1)
        response = await on_second.get("/v1/admin/tenants")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="x0", error="invalid_token"'


async def test_admin_routes_create_list_and_revoke(
    replicas: list[FastAPI], database: str, stack: StackEndpoints
) -> None:
    pepper = settings_for(database, stack).pepper()
    operator = await provision_key(database, pepper, scopes=["admin"])
    async with client(replicas[0], operator.key) as admin:
        created = await admin.post("/v1/admin/tenants", json={"id": "lab", "name": "Lab"})
        assert created.status_code == 201, created.text
        assert (
            await admin.post("/v1/admin/tenants", json={"id": "lab", "name": "x"})
        ).status_code == 409
        tenants = (await admin.get("/v1/admin/tenants")).json()
        assert {tenant["id"] for tenant in tenants} == {"default", "lab"}
        made = await admin.post(
            "/v1/admin/keys",
            json={"name": "ci", "tenant": "lab", "scopes": ["crypto"], "expires_in_seconds": 3600},
        )
        assert made.status_code == 201, made.text
        assert made.headers["cache-control"] == "no-store"
        secret = made.json()["key"]
        refused = await admin.post(
            "/v1/admin/keys", json={"name": "x", "tenant": "lab", "scopes": ["internal"]}
        )
        assert refused.status_code == 422
        listed = (await admin.get("/v1/admin/keys", params={"tenant": "lab"})).json()
        assert [key["name"] for key in listed] == ["ci"]
        assert secret not in json.dumps(listed)
        assert listed[0]["hint"] == secret[:12]
        async with client(replicas[0], secret) as ci:
            assert (await ci.get("/v1/admin/tenants")).status_code == 403
        gone = await admin.delete(f"/v1/admin/keys/{made.json()['id']}")
        assert gone.json()["revoked_at"] is not None
        async with client(replicas[0], secret) as ci:
            assert (await ci.get("/v1/admin/tenants")).status_code == 401


async def test_last_use_is_recorded_off_the_request_path(
    replicas: list[FastAPI], database: str, stack: StackEndpoints
) -> None:
    pepper = settings_for(database, stack).pepper()
    key = await provision_key(database, pepper, scopes=["admin"])
    app = replicas[0]
    async with client(app, key.key) as admin:
        await admin.get("/v1/admin/tenants")
        (before,) = [
            k for k in (await admin.get("/v1/admin/keys")).json() if k["id"] == str(key.id)
        ]
        assert before["last_used_at"] is None
        await app.state.authenticator.api_keys.write_touches()
        (after,) = [k for k in (await admin.get("/v1/admin/keys")).json() if k["id"] == str(key.id)]
    assert after["last_used_at"] is not None


async def test_readiness_includes_postgres(replicas: list[FastAPI]) -> None:
    transport = httpx.ASGITransport(app=replicas[0])
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as anonymous:
        response = await anonymous.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["postgres"] is True


async def test_production_refuses_to_start_while_a_development_key_is_usable(
    database: str, stack: StackEndpoints, tmp_path: Path
) -> None:
    development = settings_for(database, stack)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    assert pool is not None
    try:
        store = await open_key_store(development, pool)
        made = await admin_cli.dev_key(store, development, tmp_path / "dev-admin-key")
        # The same settings in production (copied: the stack's DSN is a development one).
        common = development.common.model_copy(update={"environment": "production"})
        production = development.model_copy(update={"common": common})
        with pytest.raises(DevelopmentKeyInProduction):
            await open_key_store(production, pool)
        app = create_app(production)
        with pytest.raises(DevelopmentKeyInProduction):
            async with app.router.lifespan_context(app):
                pass
        await store.revoke_key(uuid.UUID(made["id"]))
        await open_key_store(production, pool)  # starts once it is revoked
    finally:
        await pool.close()


def admin_command(
    *arguments: str, dsn: str, environment: str = "development"
) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("x0-gateway-admin")
    variables = {**os.environ, "X0_POSTGRES__DSN": dsn, "X0_ENVIRONMENT": environment}
    return subprocess.run(
        [str(command), *arguments],
        env=variables,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_admin_command_makes_the_development_key_once_and_keys_on_demand(
    database: str, tmp_path: Path
) -> None:
    file = tmp_path / "stack" / "dev-admin-key"
    first = admin_command("dev-key", "--file", str(file), dsn=database)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["created"] is True
    assert file.stat().st_mode & 0o777 == 0o600
    assert file.read_text().startswith("x0_test_")
    again = admin_command("dev-key", "--file", str(file), dsn=database)
    assert json.loads(again.stdout) == {**json.loads(first.stdout), "created": False}

    made = admin_command(
        "create-key",
        "--tenant",
        "default",
        "--scopes",
        "crypto,rag:read",
        "--name",
        "ci",
        "--expires-in",
        "90d",
        dsn=database,
    )
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    assert created["key"].startswith("x0_live_")
    listed = admin_command("list-keys", dsn=database)
    assert created["key"] not in listed.stdout
    assert {key["name"] for key in json.loads(listed.stdout)} == {"ci", admin_cli.DEV_KEY_NAME}
    revoked = admin_command("revoke-key", created["id"], dsn=database)
    assert json.loads(revoked.stdout)["revoked_at"] is not None
    unknown = admin_command(
        "create-key", "--tenant", "nobody", "--scopes", "crypto", "--name", "x", dsn=database
    )
    assert unknown.returncode == 1
    assert "no such tenant" in unknown.stderr


async def test_a_jwt_or_key_of_an_unknown_or_disabled_tenant_is_refused(
    database: str, stack: StackEndpoints, tmp_path: Path
) -> None:
    """JWT tenants are checked against gateway.tenants (a JWKS this test generates);
    disabling a tenant (x0-gateway-admin disable-tenant) refuses its tokens and its
    API keys on every replica within the cache period, enabling it accepts them again."""
    signer = Signer("rsa-tenants")
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": [signer.jwk]}))
    settings = settings_for(
        database,
        stack,
        jwt=JwtSettings(jwks_file=jwks, issuer=ISSUER, audience=AUDIENCE),
        api_key_cache_seconds=1,
    )
    pepper = settings.pepper()
    key = await provision_key(database, pepper, tenant="acme", scopes=["admin"], name="acme")
    token = signer.token(x0_tenant="acme", scope="admin")
    stranger = signer.token(x0_tenant="nobody", scope="admin")
    app = create_app(settings)

    async def statuses(http: httpx.AsyncClient) -> dict[str, int]:
        answers = {}
        for name, credential in (("token", token), ("key", key.key), ("stranger", stranger)):
            response = await http.get(
                "/v1/admin/tenants", headers={"Authorization": f"Bearer {credential}"}
            )
            answers[name] = response.status_code
            if response.status_code == 401:
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["www-authenticate"] == (
                    'Bearer realm="x0", error="invalid_token"'
                )
        return answers

    async def until(http: httpx.AsyncClient, wanted: dict[str, int]) -> None:
        started = time.monotonic()
        while (seen := await statuses(http)) != wanted:
            assert time.monotonic() - started < 5.0, seen
            await asyncio.sleep(0.1)

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as http:
            assert await statuses(http) == {"token": 200, "key": 200, "stranger": 401}
            disabled = admin_command("disable-tenant", "acme", dsn=database)
            assert disabled.returncode == 0, disabled.stderr
            assert json.loads(disabled.stdout)["disabled_at"] is not None
            await until(http, {"token": 401, "key": 401, "stranger": 401})
            enabled = admin_command("enable-tenant", "acme", dsn=database)
            assert json.loads(enabled.stdout)["disabled_at"] is None
            await until(http, {"token": 200, "key": 200, "stranger": 401})
    unknown = admin_command("disable-tenant", "nobody", dsn=database)
    assert (unknown.returncode, "no such tenant" in unknown.stderr) == (1, True)
