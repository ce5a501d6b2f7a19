"""Pytest plugin: the real Kafka, PostgreSQL and Redis the integration tests use.

Where a Docker engine answers, the services start in containers
(testcontainers: apache/kafka, postgres:16, redis:7). Otherwise they must already
run locally, at the addresses in ``X0_KAFKA__BOOTSTRAP_SERVERS``, ``X0_POSTGRES__DSN``
and ``X0_REDIS__URL``. ``make test`` starts a fresh stack of the tests' own
(``deploy/local-stack/test-stack.sh``, ports 19092/15432/16379) and sets them; unset,
they default to the stack ``make up`` runs, whose services would answer the e2e
tests' requests too. A missing service fails the run loudly; integration tests
never skip.

Enable it from a ``conftest.py`` with ``pytest_plugins = ["x0_common.testing.stack"]``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from x0_common.kafka.clients import connection_options
from x0_common.postgres import migrate
from x0_common.settings import KafkaSettings, PostgresSettings, RedisSettings, TlsSettings
from x0_common.testing.credentials import (
    CREDENTIALS_VARIABLE,
    IDENTITY_VARIABLE,
    SERVICES,
    credentials_folder,
    identity_folder,
    service_environment,
    service_stores,
    tls_environment,
)


@dataclass(frozen=True)
class StackEndpoints:
    """Where the test run's services listen, and how they were provided."""

    kafka_bootstrap: str
    # The admin's: tests and tools inspect every schema and key with them.
    postgres_dsn: str
    redis_url: str
    provider: str
    # The services' password files (x0_common.testing.credentials), where the stack has them.
    credentials: Path | None = None
    # The stack's identities (<name>/{cert,key,bundle}.pem), where Kafka speaks mutual TLS.
    identities: Path | None = None

    def kafka_settings(self, identity: str = "ops", **overrides: Any) -> KafkaSettings:
        """Kafka settings pointing at this stack, as ``identity`` (ops: a super user;
        a service's name: that service's ACLs) where the broker speaks mutual TLS."""
        if self.identities is not None and "tls" not in overrides:
            folder = self.identities / identity
            overrides["tls"] = TlsSettings(
                cert_file=folder / "cert.pem",
                key_file=folder / "key.pem",
                bundle_file=folder / "bundle.pem",
            )
        return KafkaSettings(bootstrap_servers=self.kafka_bootstrap, **overrides)

    def kafka_options(self, identity: str = "ops") -> dict[str, Any]:
        """Connection keyword arguments for an aiokafka client of a test, as ``identity``."""
        return connection_options(self.kafka_settings(identity))

    def environment(self, service: str | None = None) -> dict[str, str]:
        """``X0_*`` variables for subprocesses (workers, gateways) under test: the admin's
        connections, or with ``service`` that service's own role and user. (The
        executors of x0_common.testing.processes switch a service to its own anyway.)"""
        variables = {
            "X0_KAFKA__BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "X0_POSTGRES__DSN": self.postgres_dsn,
            "X0_REDIS__URL": self.redis_url,
        }
        if self.identities is not None:
            variables[IDENTITY_VARIABLE] = str(self.identities)
            variables |= tls_environment("ops", self.identities)
        if self.credentials is not None:
            variables[CREDENTIALS_VARIABLE] = str(self.credentials)
        if service is not None and (self.credentials or self.identities) is not None:
            variables |= service_environment(service, variables, self.credentials)
        return variables

    def service_stores(self, service: str) -> tuple[PostgresSettings, RedisSettings]:
        """PostgreSQL and Redis settings of ``service``'s own role and user, for a service
        run in the test process (the admin's where the stack has no per-service ones)."""
        return service_stores(service, self.environment(), self.credentials)

    async def create_service_schemas(self, dsn: str) -> None:
        """In the (new) database of ``dsn``, connected as the admin: each service's schema,
        owned by the service's role, as ``stack.sh`` makes them in database ``x0``. A
        service's role may not create schemas, so a database of a test's own needs them
        before a service starts on it. Nothing to do without per-service roles."""
        if self.credentials is None:
            return
        connection = await asyncpg.connect(dsn)
        try:
            for service in SERVICES:
                await connection.execute(
                    f'CREATE SCHEMA IF NOT EXISTS "{service}" AUTHORIZATION "{service}"'
                )
        finally:
            await connection.close()

    @asynccontextmanager
    async def migrated_pool(
        self, schema: str, migrations: Path, *, max_size: int = 10
    ) -> AsyncIterator[asyncpg.Pool]:
        """A pool on this stack's PostgreSQL with ``schema`` migrated, as a worker does
        at start-up; closed on exit."""
        pool = await asyncpg.create_pool(self.postgres_dsn, min_size=1, max_size=max_size)
        assert pool is not None
        try:
            await migrate(pool, schema, migrations)
            yield pool
        finally:
            await pool.close()

    @asynccontextmanager
    async def redis(self, *, decode_responses: bool = False) -> AsyncIterator[aioredis.Redis]:
        """A client of this stack's Redis; closed on exit."""
        client = aioredis.from_url(self.redis_url, decode_responses=decode_responses)
        try:
            yield client
        finally:
            await client.aclose()


def _docker_engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(
            ["docker", "info"],  # noqa: S607 - docker from PATH is the point
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def _port_answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


_ADDRESS_VARIABLES = ("X0_KAFKA__BOOTSTRAP_SERVERS", "X0_POSTGRES__DSN", "X0_REDIS__URL")


def _local_endpoints() -> StackEndpoints:
    # Said in the run's summary: on `make up`'s stack its workers answer requests too.
    given = any(os.environ.get(name) for name in _ADDRESS_VARIABLES)
    endpoints = StackEndpoints(
        kafka_bootstrap=os.environ.get("X0_KAFKA__BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        postgres_dsn=os.environ.get("X0_POSTGRES__DSN", "postgresql://x0:x0@127.0.0.1:5432/x0"),
        redis_url=os.environ.get("X0_REDIS__URL", "redis://127.0.0.1:6379/0"),
        provider="local" if given else "local, default addresses: the `make up` stack",
        credentials=credentials_folder(),
        identities=identity_folder(),
    )
    addresses = {
        "Kafka": endpoints.kafka_bootstrap.split(",")[0],
        "PostgreSQL": endpoints.postgres_dsn.rsplit("@", 1)[-1].split("/")[0],
        "Redis": endpoints.redis_url.split("//", 1)[-1].split("/")[0].rsplit("@", 1)[-1],
    }
    missing = [
        f"{name} at {address}" for name, address in addresses.items() if not _port_answers(address)
    ]
    if missing:
        pytest.exit(
            "integration services are not running: "
            + ", ".join(missing)
            + ". `make test` starts a fresh stack for the tests and points them at it; "
            "to run pytest by hand: deploy/local-stack/test-stack.sh up, then "
            'eval "$(deploy/local-stack/test-stack.sh env)".',
            returncode=3,
        )
    return endpoints


def _container_endpoints(stack: ExitStack) -> StackEndpoints:
    # Imported here: testcontainers is a dev dependency used only with Docker.
    from testcontainers.kafka import KafkaContainer  # noqa: PLC0415
    from testcontainers.postgres import PostgresContainer  # noqa: PLC0415
    from testcontainers.redis import RedisContainer  # noqa: PLC0415

    kafka = stack.enter_context(KafkaContainer("apache/kafka:4.1.1").with_kraft())
    postgres = stack.enter_context(
        PostgresContainer("postgres:16", username="x0", password="x0", dbname="x0")  # noqa: S106
    )
    redis = stack.enter_context(RedisContainer("redis:7"))
    pg_host, pg_port = postgres.get_container_host_ip(), postgres.get_exposed_port(5432)
    redis_host, redis_port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
    return StackEndpoints(
        kafka_bootstrap=kafka.get_bootstrap_server(),
        postgres_dsn=f"postgresql://x0:x0@{pg_host}:{pg_port}/x0",
        redis_url=f"redis://{redis_host}:{redis_port}/0",
        provider="testcontainers",
    )


async def _probe(endpoints: StackEndpoints) -> list[str]:
    """Ask each service who it is, so the run's output shows what it really used."""
    # Imported here: asyncpg and redis are the services' dependencies, not x0_common's.
    import asyncpg  # noqa: PLC0415
    import redis.asyncio as aioredis  # noqa: PLC0415
    from aiokafka.admin import AIOKafkaAdminClient  # noqa: PLC0415

    admin = AIOKafkaAdminClient(**endpoints.kafka_options())
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
    finally:
        await admin.close()
    connection = await asyncpg.connect(endpoints.postgres_dsn)
    try:
        postgres_version = await connection.fetchval("SHOW server_version")
    finally:
        await connection.close()
    client = aioredis.from_url(endpoints.redis_url)
    try:
        redis_version = (await client.info("server"))["redis_version"]
    finally:
        await client.aclose()
    return [
        f"Apache Kafka at {endpoints.kafka_bootstrap}: cluster {cluster['cluster_id']}, "
        f"{len(cluster['brokers'])} broker(s)",
        f"PostgreSQL {postgres_version} at {endpoints.postgres_dsn.rsplit('@', 1)[-1]}",
        f"Redis {redis_version} at {endpoints.redis_url.rsplit('@', 1)[-1].split('//')[-1]}",
    ]


_PROBED = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[StackEndpoints]:
    """The real services for this test session (containers with Docker, else local)."""
    with ExitStack() as exit_stack:
        use_containers = os.environ.get("X0_TEST_STACK") == "containers" or (
            os.environ.get("X0_TEST_STACK") != "local" and _docker_engine_answers()
        )
        endpoints = _container_endpoints(exit_stack) if use_containers else _local_endpoints()
        # A thread of its own: the session's event loop may be running already.
        with ThreadPoolExecutor(max_workers=1) as pool:
            probed = pool.submit(asyncio.run, _probe(endpoints)).result(timeout=60)
        request.config.stash[_PROBED] = [f"({endpoints.provider}) {line}" for line in probed]
        yield endpoints


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """Say which real services the integration tests ran against."""
    probed = config.stash.get(_PROBED, None)
    if probed:
        terminalreporter.section("x0 stack: the real services these tests used")
        for line in probed:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def kafka_settings(stack: StackEndpoints) -> KafkaSettings:
    """Kafka settings for the session's broker."""
    return stack.kafka_settings()


@pytest.fixture(scope="session")
async def redis_client(stack: StackEndpoints) -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis (bytes in, bytes out)."""
    async with stack.redis() as client:
        yield client
