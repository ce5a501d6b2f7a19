"""The pin store (PostgreSQL) and the nonce cache (Redis) on their own, for real."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from x0_common.errors import Unavailable
from x0_crypto.adapters.nonces import RedisNonceCache
from x0_crypto.adapters.pins import PostgresPinStore

pytestmark = pytest.mark.integration


@pytest.fixture
def node() -> str:
    return f"node-{uuid.uuid4().hex[:12]}"


async def test_first_pin_wins_among_many_concurrent(pg_pool: asyncpg.Pool, node: str) -> None:
    pins = PostgresPinStore(pg_pool)
    candidates = [os.urandom(32) for _ in range(8)]
    results = await asyncio.gather(*(pins.pin_first(node, key) for key in candidates))
    winners = [key for (pinned, created), key in zip(results, candidates, strict=True) if created]
    assert len(winners) == 1
    assert {pinned for pinned, _ in results} == {winners[0]}
    assert await pins.current(node) == winners[0]


async def test_replace_only_from_the_pinned_key(pg_pool: asyncpg.Pool, node: str) -> None:
    pins = PostgresPinStore(pg_pool)
    k1, k2, k3 = (os.urandom(32) for _ in range(3))
    await pins.pin_first(node, k1)
    assert not await pins.replace(node, old=k2, new=k3)
    assert await pins.current(node) == k1
    assert await pins.replace(node, old=k1, new=k2)
    assert await pins.current(node) == k2
    pinned_at, updated_at = await pg_pool.fetchrow(
        "SELECT pinned_at, updated_at FROM crypto.node_pins WHERE node_id = $1", node
    )
    assert updated_at >= pinned_at


async def test_concurrent_replacements_from_one_key_apply_once(
    pg_pool: asyncpg.Pool, node: str
) -> None:
    pins = PostgresPinStore(pg_pool)
    old = os.urandom(32)
    await pins.pin_first(node, old)
    candidates = [os.urandom(32) for _ in range(8)]
    applied = await asyncio.gather(*(pins.replace(node, old=old, new=k) for k in candidates))
    assert applied.count(True) == 1
    assert await pins.current(node) == candidates[applied.index(True)]


async def test_postgres_down_is_unavailable(node: str) -> None:
    # min_size=0 connects on first use; nothing listens on port 1 of the loopback.
    pool = await asyncpg.create_pool(
        "postgresql://x0:x0@127.0.0.1:1/x0", min_size=0, max_size=1, timeout=2
    )
    assert pool is not None
    try:
        pins = PostgresPinStore(pool)
        with pytest.raises(Unavailable):
            await pins.current(node)
        with pytest.raises(Unavailable):
            await pins.pin_first(node, b"k" * 32)
    finally:
        await pool.close()


async def test_a_nonce_is_owned_by_the_first_request(redis_client: aioredis.Redis, node) -> None:
    nonces = RedisNonceCache(redis_client)
    nonce = os.urandom(32)
    assert not await nonces.seen(node, nonce, "r1")
    assert await nonces.record(node, nonce, "r1", ttl_ms=10_000)
    assert await nonces.record(node, nonce, "r1", ttl_ms=10_000)  # its own redelivery
    assert not await nonces.seen(node, nonce, "r1")
    assert await nonces.seen(node, nonce, "r2")
    assert not await nonces.record(node, nonce, "r2", ttl_ms=10_000)
    assert not await nonces.seen(f"{node}-other", nonce, "r2")  # per node
    ttl = await redis_client.pttl(nonces.key(node, nonce))
    assert 0 < ttl <= 10_000


async def test_concurrent_records_have_one_owner(redis_client: aioredis.Redis, node) -> None:
    nonces = RedisNonceCache(redis_client)
    nonce = os.urandom(32)
    owners = await asyncio.gather(
        *(nonces.record(node, nonce, f"r{i}", ttl_ms=10_000) for i in range(20))
    )
    assert owners.count(True) == 1


async def test_a_nonce_is_forgotten_after_its_ttl(redis_client: aioredis.Redis, node) -> None:
    nonces = RedisNonceCache(redis_client)
    nonce = os.urandom(32)
    assert await nonces.record(node, nonce, "r1", ttl_ms=50)
    await asyncio.sleep(0.2)
    assert not await nonces.seen(node, nonce, "r2")
    assert await nonces.record(node, nonce, "r2", ttl_ms=50)


async def test_redis_down_is_unavailable(node: str) -> None:
    # Port 1 on the loopback: nothing listens, the connection is refused at once.
    # No client-side retries: the responder retries Unavailable itself.
    client = aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
    )
    try:
        nonces = RedisNonceCache(client)
        with pytest.raises(Unavailable):
            await nonces.seen(node, b"n" * 16, "r1")
        with pytest.raises(Unavailable):
            await nonces.record(node, b"n" * 16, "r1", ttl_ms=1000)
    finally:
        await client.aclose()
