"""Shared fixtures for the crypto tests: the registry, and the real PostgreSQL and Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import redis.asyncio as aioredis

from x0_common.postgres import migrate
from x0_common.testing.stack import StackEndpoints
from x0_crypto.app import MIGRATIONS
from x0_crypto.domain import Registry, build_registry


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The service's standard algorithm selection, as the worker builds it."""
    return build_registry()


@pytest.fixture(scope="session")
async def pg_pool(stack: StackEndpoints) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test PostgreSQL with the crypto schema migrated, as at start-up."""
    pool = await asyncpg.create_pool(stack.postgres_dsn, min_size=1, max_size=10)
    assert pool is not None
    await migrate(pool, "crypto", MIGRATIONS)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def redis_client(stack: StackEndpoints) -> AsyncIterator[aioredis.Redis]:
    """A client of the test Redis."""
    client = aioredis.from_url(stack.redis_url)
    yield client
    await client.aclose()
