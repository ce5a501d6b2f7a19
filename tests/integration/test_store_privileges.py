"""Least privilege inside the stores: each service's PostgreSQL role and Redis user, as
``deploy/local-stack/stack.sh`` makes them, can do what the service does and is refused
the rest (docs/security.md, "PostgreSQL roles and Redis users").

A matrix, as for the HTTP routes: every service identity against every service's schema
and key prefix, on the real PostgreSQL and Redis, logged in with the passwords from the
stack's 0600 files, as the services log in (x0_common.postgres.create_pool,
x0_common.redis_client.create_redis).
"""

from __future__ import annotations

import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from x0_common.postgres import create_pool, migrate
from x0_common.redis_client import create_redis
from x0_common.testing.credentials import SERVICES, service_stores
from x0_common.testing.migrations import scratch_database
from x0_common.testing.stack import StackEndpoints
from x0_crypto.adapters.nonces import RedisNonceCache
from x0_crypto.app import MIGRATIONS as CRYPTO_MIGRATIONS
from x0_gateway.auth.setup import MIGRATIONS as GATEWAY_MIGRATIONS
from x0_gateway.limits.gcra import SCRIPT as GCRA_SCRIPT
from x0_gateway.limits.idempotency import IdempotencyStore
from x0_gateway.limits.ratelimit import keys_for
from x0_rag.adapters.cache import PREFIX as RAG_PREFIX
from x0_rag.app import MIGRATIONS as RAG_MIGRATIONS
from x0_telemetry.adapters.latest import LatestStore
from x0_telemetry.app import MIGRATIONS as TELEMETRY_MIGRATIONS

pytestmark = [pytest.mark.integration, pytest.mark.security]

MIGRATIONS = {
    "gateway": GATEWAY_MIGRATIONS,
    "crypto": CRYPTO_MIGRATIONS,
    "rag": RAG_MIGRATIONS,
    "telemetry": TELEMETRY_MIGRATIONS,
}
# A key under each service's prefix (the gateway has two: rate limits, idempotency).
OWN_KEYS = {
    "gateway": ["x0:rl:{t}:probe", "x0:idem:{t}:probe"],
    "crypto": ["x0:crypto:t:beacon-nonce:probe"],
    "rag": [f"{RAG_PREFIX}:t:emb:probe"],
    "telemetry": ["x0:telemetry:t:node:probe", "x0:telemetry:tenants"],
}


@pytest.fixture(scope="module")
def credentials(stack: StackEndpoints) -> Path:
    """The stack's folder of password files."""
    if stack.credentials is None:
        pytest.fail(
            "this stack made no per-service credentials (X0_STACK_CREDENTIALS unset): "
            "run the tests in deploy/local-stack/test-stack.sh (make test)"
        )
    return stack.credentials


def as_service(stack: StackEndpoints, service: str) -> tuple[str, Path]:
    """``service``'s DSN (no password) and its password file."""
    environment = stack.environment(service)
    return environment["X0_POSTGRES__DSN"], Path(environment["X0_POSTGRES__PASSWORD_FILE"])


@pytest.fixture(scope="module")
async def migrated(stack: StackEndpoints, credentials: Path) -> None:
    """Every service's schema migrated by the service's own role, as each does at start."""
    del credentials
    for service in SERVICES:
        postgres, _ = stack.service_stores(service)
        pool = await create_pool(postgres)
        try:
            await migrate(pool, service, MIGRATIONS[service])
        finally:
            await pool.close()


def test_the_password_files_are_readable_by_their_owner_only(credentials: Path) -> None:
    files = sorted(credentials.glob("*.password"))
    names = {file.name for file in files}
    for service in SERVICES:
        assert {f"postgres-{service}.password", f"redis-{service}.password"} <= names
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o700
    for file in files:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        assert len(file.read_text().strip()) >= 32, file  # 192 random bits, hex


# -- PostgreSQL ------------------------------------------------------------------------


async def test_each_role_owns_its_schema_and_holds_no_other_privilege(
    stack: StackEndpoints, migrated: None
) -> None:
    del migrated
    admin = await asyncpg.connect(stack.postgres_dsn)
    try:
        owners = dict(
            await admin.fetch(
                "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace"
                " WHERE nspname = ANY($1::text[])",
                list(SERVICES),
            )
        )
        assert owners == {service: service for service in SERVICES}
        for role in SERVICES:
            attributes = await admin.fetchrow(
                "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls"
                " FROM pg_roles WHERE rolname = $1",
                role,
            )
            assert attributes is not None
            assert not any(attributes.values()), (role, dict(attributes))
            # A member of no role (pg_read_all_data and the like) either.
            assert not await admin.fetchval(
                "SELECT count(*) FROM pg_auth_members WHERE member = $1::regrole", role
            )
            assert not await admin.fetchval(
                "SELECT has_database_privilege($1, current_database(), 'CREATE')", role
            )
            for schema in [*SERVICES, "public"]:
                usage = await admin.fetchval(
                    "SELECT has_schema_privilege($1, $2, 'USAGE')", role, schema
                )
                assert usage == (schema == role), (role, schema)
    finally:
        await admin.close()


async def test_migrations_run_as_the_schema_owner(stack: StackEndpoints, credentials: Path) -> None:
    # A database of its own: in x0, gateways run in process by other tests as the admin
    # make audit partitions (runtime DDL, not migrations) that the admin owns.
    async with scratch_database(stack.postgres_dsn) as scratch:
        await stack.create_service_schemas(scratch)
        environment = {**stack.environment(), "X0_POSTGRES__DSN": scratch}
        admin = await asyncpg.connect(scratch)
        try:
            for number, service in enumerate(SERVICES):
                # Half by the service's role, half by the admin (migrate's SET ROLE).
                if number % 2:
                    pool = await asyncpg.create_pool(scratch, min_size=1, max_size=1)
                else:
                    postgres, _ = service_stores(service, environment, credentials)
                    pool = await create_pool(postgres)
                try:
                    assert await migrate(pool, service, MIGRATIONS[service])
                finally:
                    await pool.close()
                owners = await admin.fetch(
                    "SELECT relname, pg_get_userbyid(relowner) AS owner FROM pg_class"
                    " WHERE relnamespace = $1::regnamespace",
                    service,
                )
                assert owners, service
                foreign = [dict(row) for row in owners if row["owner"] != service]
                assert foreign == [], service
        finally:
            await admin.close()


@pytest.mark.parametrize("role", SERVICES)
async def test_a_role_reads_and_writes_its_schema_and_is_refused_the_others(
    stack: StackEndpoints, migrated: None, role: str
) -> None:
    del migrated
    dsn, password_file = as_service(stack, role)
    connection = await asyncpg.connect(dsn, password=password_file.read_text().strip())
    try:
        assert await connection.fetchval("SELECT current_user") == role
        for schema in SERVICES:
            read = f'SELECT count(*) FROM "{schema}".schema_migrations'  # noqa: S608
            create = f'CREATE TABLE "{schema}".privilege_probe (x int)'
            if schema == role:
                assert await connection.fetchval(read) == len(list(MIGRATIONS[role].glob("*.sql")))
                async with connection.transaction():
                    await connection.execute(create)
                    await connection.execute(f'DROP TABLE "{schema}".privilege_probe')
                continue
            for statement in (
                read,
                create,
                f"INSERT INTO \"{schema}\".schema_migrations (name) VALUES ('forged')",  # noqa: S608
                f'DROP TABLE "{schema}".schema_migrations',
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
                    await connection.execute(statement)
                assert "permission denied for schema" in str(refused.value), (role, statement)
        for statement in (
            "CREATE SCHEMA privilege_probe",
            "CREATE TABLE public.privilege_probe (x int)",
            "CREATE DATABASE privilege_probe",
            "CREATE ROLE privilege_probe",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(statement)
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await connection.execute(f"SET ROLE {next(s for s in SERVICES if s != role)}")
    finally:
        await connection.close()


async def test_a_role_without_its_password_is_refused(stack: StackEndpoints) -> None:
    dsn, _ = as_service(stack, "crypto")
    _, rag_password = as_service(stack, "rag")
    for password in ("", "x0", "crypto", rag_password.read_text().strip()):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(dsn, password=password)
    # The development role x0/x0 of earlier stacks is gone: x0 has a random password.
    admin = stack.postgres_dsn.rsplit("@", 1)[-1]
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://x0:x0@{admin}")


# -- Redis -----------------------------------------------------------------------------


@pytest.fixture
async def service_redis(
    stack: StackEndpoints, credentials: Path, request: pytest.FixtureRequest
) -> AsyncIterator[aioredis.Redis]:
    """The client a service makes (its user, the password from its file)."""
    del credentials
    _, settings = stack.service_stores(request.param)
    # Telemetry's client decodes replies, as the service's does (TelemetryDeps).
    client = create_redis(settings, decode_responses=request.param == "telemetry")
    try:
        yield client
    finally:
        await client.aclose()


def foreign_keys(service: str) -> list[str]:
    """Keys of the other services, and keys under no service's prefix."""
    others = [key for other in SERVICES if other != service for key in OWN_KEYS[other]]
    return [*others, "x0:probe", "probe", "x0:audit:probe"]


@pytest.mark.parametrize("service_redis", SERVICES, indirect=True, ids=SERVICES)
async def test_a_redis_user_works_under_its_prefix_and_is_refused_the_rest(
    service_redis: aioredis.Redis, request: pytest.FixtureRequest
) -> None:
    service = request.node.callspec.params["service_redis"]
    decoded = service == "telemetry"
    for key in OWN_KEYS[service]:
        assert await service_redis.set(key, "1", px=10_000)
        assert await service_redis.get(key) == ("1" if decoded else b"1")
        assert await service_redis.delete(key) == 1
    for key in foreign_keys(service):
        for command in (("GET", key), ("SET", key, "forged"), ("DEL", key), ("EXPIRE", key, 1)):
            with pytest.raises(NoPermissionError):
                await service_redis.execute_command(*command)
        # A script may not reach another prefix either (redis.call is checked too).
        with pytest.raises(ResponseError, match=r"(?i)noperm|no permissions|can't access"):
            await service_redis.eval("return redis.call('GET', ARGV[1])", 0, key)
    for command in (
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("CONFIG", "SET", "maxmemory", "1"),
        ("ACL", "LIST"),
        ("PUBLISH", "x0:probe", "forged"),
        ("FUNCTION", "FLUSH"),
        ("SCRIPT", "FLUSH"),
        ("MONITOR",),
        ("CLIENT", "KILL", "TYPE", "normal"),
    ):
        with pytest.raises(NoPermissionError):
            await service_redis.execute_command(*command)


@pytest.mark.parametrize("service_redis", ["gateway"], indirect=True)
async def test_the_gateway_user_runs_the_rate_limiter_and_idempotency(
    service_redis: aioredis.Redis,
) -> None:
    # The limiter falls back to in-process limits on any Redis error, so a refused
    # command would go unnoticed in the e2e tests: the real script, the real keys.
    script = service_redis.register_script(GCRA_SCRIPT)
    keys = keys_for("standard", f"acl-{uuid.uuid4().hex[:8]}", "probe")
    reply = await script(keys=list(keys), args=[100, 10_000, 10, 10_000])
    assert reply[0] == 1  # allowed
    store = IdempotencyStore(service_redis, ttl_seconds=10, pending_seconds=5)
    key = store.key("t", "credential", uuid.uuid4().hex)
    assert (await store.claim(key, "fingerprint")).outcome == "new"
    assert (await store.claim(key, "fingerprint")).outcome == "in_progress"
    await store.release(key)
    await service_redis.delete(*keys)


@pytest.mark.parametrize("service_redis", ["crypto"], indirect=True)
async def test_the_crypto_user_records_beacon_nonces(service_redis: aioredis.Redis) -> None:
    nonces = RedisNonceCache(service_redis, tenant=f"acl-{uuid.uuid4().hex[:8]}")
    assert await nonces.record("node", b"nonce", "request-1", 10_000)
    assert await nonces.seen("node", b"nonce", "request-2")
    assert not await nonces.record("node", b"nonce", "request-2", 10_000)


@pytest.mark.parametrize("service_redis", ["telemetry"], indirect=True)
async def test_the_telemetry_user_runs_the_latest_state_scripts(
    service_redis: aioredis.Redis,
) -> None:
    tenant = f"acl-{uuid.uuid4().hex[:8]}"
    store = LatestStore(service_redis, ttl_seconds=60).of(tenant)
    now = int(time.time() * 1000)
    assert await store.admit(["n1"], now, limit=10) == set()
    update = {"n": "n1", "m": "mesh", "t": now, "k": "h", "status": "up", "version": "1"}
    assert await store.apply([update], now) == 1
    assert (await store.node("n1"))["status"] == "up"
    assert tenant in await LatestStore(service_redis, ttl_seconds=60).tenants(now)
    await store.forget_stale(now)


async def test_redis_refuses_the_default_user_and_wrong_passwords(
    stack: StackEndpoints, credentials: Path
) -> None:
    address = stack.redis_url.rsplit("@", 1)[-1]
    anonymous = aioredis.from_url(f"redis://{address}")
    try:
        with pytest.raises(AuthenticationError):
            await anonymous.ping()
    finally:
        await anonymous.aclose()
    crypto_password = (credentials / "redis-crypto.password").read_text().strip()
    for user, password in (
        ("default", ""),
        ("default", "x0"),
        ("default", crypto_password),
        ("crypto", "wrong"),
        ("rag", crypto_password),
    ):
        client = aioredis.Redis.from_url(f"redis://{address}", username=user, password=password)
        try:
            with pytest.raises((AuthenticationError, ResponseError)):
                await client.ping()
        finally:
            await client.aclose()
