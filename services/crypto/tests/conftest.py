"""Shared fixtures for the crypto tests: the registry, the real PostgreSQL (the Redis
client is the stack plugin's ``redis_client``), and the managed keys on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from x0_common.testing.stack import StackEndpoints
from x0_crypto.app import MIGRATIONS
from x0_crypto.domain import Registry, build_registry

from .keys_support import KeysUnderTest


@pytest.fixture(scope="session")
def registry() -> Registry:
    """The service's standard algorithm selection, as the worker builds it."""
    return build_registry()


@pytest.fixture(scope="session")
async def pg_pool(stack: StackEndpoints) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the test PostgreSQL with the crypto schema migrated, as at start-up."""
    async with stack.migrated_pool("crypto", MIGRATIONS) as pool:
        yield pool


@pytest.fixture
def keys(pg_pool: asyncpg.Pool, registry: Registry) -> KeysUnderTest:
    """The real keystore and key handlers on the test PostgreSQL."""
    return KeysUnderTest(pg_pool, registry)


@pytest.fixture
async def prefix(pg_pool: asyncpg.Pool) -> AsyncIterator[str]:
    """Key names of this test start with it; its keys are removed afterwards."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    yield prefix
    await pg_pool.execute("DELETE FROM crypto.keys WHERE name LIKE $1", prefix + "%")
