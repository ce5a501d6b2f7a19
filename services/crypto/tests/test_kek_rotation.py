"""KEK rotation against the real PostgreSQL and the real crypto: keys sealed under KEK
A, read by a worker with B current and A previous, re-wrapped to B by the job (in
batches, interrupted and resumed, run again), then read with B alone."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from prometheus_client import CollectorRegistry

from x0_common.metrics import new_registry
from x0_common.testing.stack import StackEndpoints
from x0_crypto.adapters.kekrewrap import KekRewrap
from x0_crypto.adapters.keybackup import KeyBackups
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.domain import Registry, envelope
from x0_crypto.domain.managed import KeySettings
from x0_crypto.errors import SealedKeyCorrupt
from x0_crypto.metrics import CryptoMetrics

from .kek_support import legacy_seal

pytestmark = pytest.mark.integration

A, B = os.urandom(32), os.urandom(32)
A_ID, B_ID = envelope.kek_id(A).hex(), envelope.kek_id(B).hex()
TYPES = ("X-Wing", "ML-KEM-768", "ML-DSA-44", "Ed25519+ML-DSA-65")


@pytest.fixture
async def tenant(pg_pool: asyncpg.Pool) -> AsyncIterator[str]:
    """A tenant of this test alone, so the job (limited to it) touches nothing else."""
    name = f"tk-{uuid.uuid4().hex[:10]}"
    yield name
    await pg_pool.execute("DELETE FROM crypto.keys WHERE tenant = $1", name)


def store(
    pool: asyncpg.Pool, registry: Registry, tenant: str, kek: envelope.Keyring | bytes
) -> KeyStore:
    return KeyStore(pool, kek, registry).of(tenant)


async def secrets(keys: KeyStore) -> dict[tuple[str, int], bytes]:
    """Every version's secret key of every key in the tenant, opened (real crypto)."""
    names = await keys.pool.fetch(
        "SELECT name FROM crypto.keys WHERE tenant = $1 ORDER BY name", keys.tenant
    )
    opened = {}
    for row in names:
        loaded = await keys.load(row["name"])
        for version in loaded.key.versions:
            opened[row["name"], version.version] = loaded.secret_key(version.version)
    return opened


async def seed(pool: asyncpg.Pool, registry: Registry, tenant: str) -> dict[tuple[str, int], bytes]:
    """Keys under A: one per type, each rotated twice, plus one row in the format from
    before KEK ids; 13 versions. Returns their secret keys."""
    under_a = store(pool, registry, tenant, A)
    for key_type in TYPES:
        name = f"k-{key_type.lower().replace('+', '-')}"
        await under_a.create(name, key_type, KeySettings(), None)
        await under_a.rotate(name)
        await under_a.rotate(name)
    await under_a.create("legacy", "X-Wing", KeySettings(), None)
    secret = (await under_a.load("legacy")).secret_key(1)
    await pool.execute(
        "UPDATE crypto.key_versions SET encrypted_secret_key = $2"
        " WHERE tenant = $1 AND name = 'legacy'",
        tenant,
        legacy_seal(
            A, tenant=tenant, name="legacy", version=1, key_type="X-Wing", secret_key=secret
        ),
    )
    opened = await secrets(under_a)
    assert len(opened) == 13
    return opened


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, {"service": "crypto", **labels}) or 0.0


async def test_rotation_from_a_to_b_online_interrupted_and_resumed(
    pg_pool: asyncpg.Pool, registry: Registry, tenant: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    before = await seed(pg_pool, registry, tenant)
    both = envelope.Keyring(B, (A,))

    # B alone, before the rewrap: the typed error, not a crash, for every version.
    only_b = store(pg_pool, registry, tenant, B)
    loaded = await only_b.load("k-x-wing")
    with pytest.raises(SealedKeyCorrupt) as caught:
        loaded.secret_key(1)
    assert caught.value.code == "internal"
    assert caught.value.details["reason"] == "sealed_key_corrupt"

    # B current + A previous reads everything A sealed, old format included.
    assert await secrets(store(pg_pool, registry, tenant, both)) == before

    metrics_registry = new_registry()
    job = KekRewrap(pg_pool, both, CryptoMetrics(metrics_registry), tenant=tenant)
    assert await job.remaining() == {A_ID: 12, envelope.NO_KEK_ID: 1}
    assert sample(metrics_registry, "x0_crypto_kek_versions_remaining", kek_id=A_ID) == 12

    # Interrupted after one batch of 5: that batch committed, the rest untouched.
    first = await job.run(batch_size=5, max_batches=1)
    assert (first.rewrapped, first.batches, first.finished) == (5, 1, False)
    assert sum(first.remaining.values()) == 8
    # Resumed: a fresh run finds only what is left.
    second = await job.run(batch_size=5)
    assert (second.rewrapped, second.failed, second.finished) == (8, 0, True)
    assert second.remaining == {}
    # Run again: nothing to do.
    third = await job.run(batch_size=5)
    assert (third.rewrapped, third.finished) == (0, True)

    rewrapped = sample(metrics_registry, "x0_crypto_kek_rewrapped_total", from_kek_id=A_ID)
    legacy = sample(
        metrics_registry, "x0_crypto_kek_rewrapped_total", from_kek_id=envelope.NO_KEK_ID
    )
    assert (rewrapped, legacy) == (12, 1)
    assert sample(metrics_registry, "x0_crypto_kek_versions_remaining", kek_id=A_ID) == 0
    stored = await pg_pool.fetch(
        "SELECT encrypted_secret_key FROM crypto.key_versions WHERE tenant = $1", tenant
    )
    assert {envelope.wrapped_by(bytes(row[0])) for row in stored} == {B_ID}

    # B alone now reads everything, and the secret keys are the same ones.
    assert await secrets(store(pg_pool, registry, tenant, B)) == before

    # No key material in the log records, errors or reports.
    logged = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records)
    for key in (A, B):
        for spelled in (key.hex(), base64.urlsafe_b64encode(key).decode().rstrip("="), repr(key)):
            assert spelled not in logged
            assert spelled not in str(caught.value) + repr(caught.value.details)
            assert spelled not in repr(first) + repr(job)


async def test_rewrap_while_the_worker_rotates_and_reads(
    pg_pool: asyncpg.Pool, registry: Registry, tenant: str
) -> None:
    before = await seed(pg_pool, registry, tenant)
    both = envelope.Keyring(B, (A,))
    worker = store(pg_pool, registry, tenant, both)
    job = KekRewrap(pg_pool, both, tenant=tenant)

    async def serve() -> None:
        for _ in range(5):
            await worker.rotate("k-x-wing")
            assert len(await secrets(worker)) >= 13

    report, _ = await asyncio.gather(job.run(batch_size=1), serve())
    assert report.failed == 0
    assert await job.remaining() == {}
    after = await secrets(store(pg_pool, registry, tenant, B))
    assert len(after) == 18
    assert {key: after[key] for key in before} == before


async def test_a_backup_made_under_the_old_kek_restores_with_it_as_previous(
    pg_pool: asyncpg.Pool, registry: Registry, tenant: str
) -> None:
    under_a = store(pg_pool, registry, tenant, A)
    await under_a.create("saved", "ML-DSA-44", KeySettings(), None)
    blob = await KeyBackups(under_a, A, registry).backup("saved")
    secret = (await under_a.load("saved")).secret_key(1)

    both = envelope.Keyring(B, (A,))
    restored = await KeyBackups(store(pg_pool, registry, tenant, both), both, registry).restore(
        blob, "restored", force=False
    )
    assert restored.name == "restored"
    # Restored rows are sealed under the current KEK: B alone opens them.
    assert (await store(pg_pool, registry, tenant, B).load("restored")).secret_key(1) == secret


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode()


async def _command(stack: StackEndpoints, *arguments: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "X0_POSTGRES__DSN": stack.postgres_dsn,
        "X0_CRYPTO_KEK": _b64(B),
        "X0_CRYPTO_PREVIOUS_KEKS": _b64(A),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "x0_crypto",
        *arguments,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_the_ops_command_rewraps_and_writes_its_metrics(
    pg_pool: asyncpg.Pool, registry: Registry, tenant: str, stack: StackEndpoints, tmp_path: Path
) -> None:
    before = await seed(pg_pool, registry, tenant)
    status, out, err = await _command(stack, "kek-status", "--tenant", tenant)
    assert status == 0, err
    assert json.loads(out) == {
        "current_kek_id": B_ID,
        "configured_kek_ids": [B_ID, A_ID],
        "remaining": {A_ID: 12, envelope.NO_KEK_ID: 1},
    }
    metrics_file = tmp_path / "rewrap.prom"
    status, out, err = await _command(
        stack,
        "rewrap-kek",
        "--tenant",
        tenant,
        "--batch-size",
        "4",
        "--metrics-file",
        str(metrics_file),
    )
    assert status == 0, err
    report = json.loads(out)
    assert (report["rewrapped"], report["failed"], report["finished"]) == (13, 0, True)
    assert report["batches"] == 4
    assert report["remaining"] == {}
    exposed = metrics_file.read_text()
    assert f'x0_crypto_kek_rewrapped_total{{from_kek_id="{A_ID}",service="crypto"}} 12.0' in exposed
    assert f'x0_crypto_kek_versions_remaining{{kek_id="{A_ID}",service="crypto"}} 0.0' in exposed
    for key in (A, B):
        for text in (out, err, exposed):
            assert _b64(key).rstrip("=") not in text
            assert key.hex() not in text
    assert await secrets(store(pg_pool, registry, tenant, B)) == before
