"""Automatic rotation: the sweep rotates exactly the keys that are due, once, even with
several replicas sweeping at the same moment; the worker's hooks run it in the background."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from x0_common.metrics import new_registry
from x0_common.resources import Stores
from x0_common.testing.stack import StackEndpoints
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import Registry
from x0_crypto.domain.managed import KeySettings
from x0_crypto.handlers.rotation import auto_rotation, rotate_due_keys
from x0_crypto.metrics import CryptoMetrics
from x0_crypto.settings import CryptoSettings

from .keys_support import KeysUnderTest

pytestmark = pytest.mark.integration


async def _age(pool: asyncpg.Pool, name: str, seconds: int) -> None:
    """Make every version of ``name`` look ``seconds`` older (instead of sleeping)."""
    await pool.execute(
        "UPDATE crypto.key_versions SET created_at = created_at - make_interval(secs => $2)"
        " WHERE name = $1",
        name,
        seconds,
    )


async def test_sweep_rotates_due_keys_once_across_replicas(
    stack: StackEndpoints, pg_pool: asyncpg.Pool, registry: Registry, prefix: str
) -> None:
    replicas = [
        KeysUnderTest(
            await asyncpg.create_pool(stack.postgres_dsn, min_size=1, max_size=3), registry
        )
        for _ in range(3)
    ]
    try:
        store = replicas[0].store
        due, later, never = f"{prefix}-due", f"{prefix}-later", f"{prefix}-never"
        await store.create(due, "ML-KEM-768", KeySettings(auto_rotate_period_seconds=60), None)
        await store.create(later, "ML-DSA-44", KeySettings(auto_rotate_period_seconds=3600), None)
        await store.create(never, "X-Wing", KeySettings(), None)
        for name in (due, later, never):
            await _age(pg_pool, name, 120)

        swept = await asyncio.gather(
            *(rotate_due_keys(replica.store, replica.metrics) for replica in replicas)
        )
        assert sum(names.count(due) for names in swept) == 1
        assert not any(later in names or never in names for names in swept)
        latest = {name: (await store.read(name)).latest_version for name in (due, later, never)}
        assert latest == {due: 2, later: 1, never: 1}
        rotations = sum(r.sample("x0_crypto_key_rotations_total", trigger="auto") for r in replicas)
        assert rotations >= 1

        # Version 2 is fresh: the next sweep leaves the key alone.
        again = await rotate_due_keys(store, replicas[0].metrics)
        assert due not in again
        assert (await store.read(due)).latest_version == 2
        count = await pg_pool.fetchval("SELECT count(*) FROM crypto.keys")
        assert replicas[0].sample("x0_crypto_managed_keys") == count
    finally:
        for replica in replicas:
            await replica.store.pool.close()


async def test_worker_hooks_sweep_in_the_background(
    pg_pool: asyncpg.Pool, registry: Registry, prefix: str
) -> None:
    settings = CryptoSettings(auto_rotate_check_seconds=0.05)
    deps = CryptoDeps(
        settings=settings,
        algorithms=registry,
        metrics=CryptoMetrics(new_registry()),
        stores=Stores.of(pg_pool),
    )
    await deps.open_keys()
    job = auto_rotation(deps)
    await job.start()
    try:
        store = deps.keystore
        assert isinstance(store, KeyStore)
        name = f"{prefix}-bg"
        await store.create(name, "ML-DSA-65", KeySettings(auto_rotate_period_seconds=60), None)
        await _age(pg_pool, name, 61)
        # Poll the table (what a replica would see) for up to 10 s.
        for _ in range(200):
            if (await store.read(name)).latest_version >= 2:
                break
            await asyncio.sleep(0.05)
    finally:
        await job.stop()
    assert (await store.read(name)).latest_version == 2
