"""Backup and restore on the real PostgreSQL: same keys back, tampering refused, and a
restore that fails midway leaves the database as it was."""

from __future__ import annotations

import asyncpg
import pytest

from x0_crypto.adapters import keybackup as keybackup_module
from x0_crypto.domain import Registry, kemdem
from x0_crypto.domain.backup import decrypt_backup
from x0_crypto.domain.managed import ConfigChange, KeySettings
from x0_crypto.errors import InvalidBackup, KeyExists

from .keys_support import KEK, KeysUnderTest

pytestmark = pytest.mark.integration


async def _count(pool: asyncpg.Pool, name: str) -> tuple[int, int]:
    keys = await pool.fetchval("SELECT count(*) FROM crypto.keys WHERE name = $1", name)
    versions = await pool.fetchval("SELECT count(*) FROM crypto.key_versions WHERE name = $1", name)
    return keys, versions


async def test_backup_delete_restore_gives_the_same_working_keys(
    keys: KeysUnderTest, registry: Registry, prefix: str
) -> None:
    kem_name, sig_name = f"{prefix}-kem", f"{prefix}-sig"
    settings = KeySettings(deletion_allowed=True, auto_rotate_period_seconds=3600)
    await keys.store.create(kem_name, "X-Wing", settings, None)
    await keys.store.create(sig_name, "Ed25519+ML-DSA-65", settings, None)
    ciphertexts = {}
    for version in (1, 2, 3):
        if version > 1:
            await keys.store.rotate(kem_name)
            await keys.store.rotate(sig_name)
        key = await keys.store.read(kem_name)
        ciphertexts[version] = kemdem.encrypt(
            registry.kem("X-Wing"), key.version(version).public_key, version, b"p%d" % version
        )
    await keys.store.configure(kem_name, ConfigChange(min_decryption_version=2))
    before = {name: await keys.store.read(name) for name in (kem_name, sig_name)}
    blobs = {name: await keys.backups.backup(name) for name in before}

    for name in before:
        assert await keys.store.delete(name)
    for name, blob in blobs.items():
        restored = await keys.backups.restore(blob, None, force=False)
        assert restored.versions == before[name].versions  # public keys and timestamps
        assert restored.settings == before[name].settings
        assert (restored.latest_version, restored.created_at) == (
            before[name].latest_version,
            before[name].created_at,
        )

    # The private keys work: old ciphertexts decrypt, signatures verify.
    loaded = await keys.store.load(kem_name)
    for version in (2, 3):
        parsed = kemdem.parse(ciphertexts[version])
        plain = kemdem.decrypt(registry.kem("X-Wing"), loaded.secret_key(version), parsed)
        assert plain == b"p%d" % version
    signer = await keys.store.load(sig_name)
    scheme = registry.signature("Ed25519+ML-DSA-65")
    for version in (1, 3):
        signature = scheme.sign(signer.secret_key(version), b"msg")
        assert scheme.verify(signer.key.version(version).public_key, b"msg", signature)


async def test_restore_refuses_to_overwrite_unless_forced(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str
) -> None:
    name, other = f"{prefix}-x", f"{prefix}-y"
    await keys.store.create(name, "ML-KEM-512", KeySettings(), None)
    blob = await keys.backups.backup(name)
    original = await keys.store.read(name)
    await keys.store.rotate(name)

    with pytest.raises(KeyExists) as caught:
        await keys.backups.restore(blob, None, force=False)
    assert caught.value.http_status == 409
    assert (await keys.store.read(name)).latest_version == 2

    forced = await keys.backups.restore(blob, None, force=True)
    assert forced.versions == original.versions
    assert await _count(pg_pool, name) == (1, 1)

    # Under another name: the rows are sealed for the new name and open there.
    renamed = await keys.backups.restore(blob, other, force=False)
    assert renamed.name == other
    assert renamed.versions[0].public_key == original.versions[0].public_key
    (await keys.store.load(other)).secret_key(1)


async def test_tampered_or_foreign_backups_are_rejected_and_write_nothing(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str
) -> None:
    name = f"{prefix}-t"
    await keys.store.create(name, "ML-DSA-87", KeySettings(deletion_allowed=True), None)
    blob = await keys.backups.backup(name)
    assert decrypt_backup(KEK, blob).name == name
    await keys.store.delete(name)

    candidates = [blob[:-1], blob[:13], b"", b"\x02" + blob[1:]]
    for index in (1, 13, len(blob) // 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[index] ^= 0x04
        candidates.append(bytes(tampered))
    for candidate in candidates:
        with pytest.raises(InvalidBackup) as caught:
            await keys.backups.restore(candidate, None, force=True)
        assert caught.value.code == "invalid_input"
    assert await _count(pg_pool, name) == (0, 0)


async def test_restore_failing_midway_leaves_nothing_behind(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{prefix}-m"
    await keys.store.create(name, "ML-KEM-768", KeySettings(), None)
    await keys.store.rotate(name)
    await keys.store.rotate(name)
    blob = await keys.backups.backup(name)
    before = await keys.store.read(name)

    # PostgreSQL rejects version 2 (a CHECK violation) after the key row and version 1
    # were written, inside the transaction.
    failing = keybackup_module.INSERT_VERSION.replace(
        "($1, $2, $3,", "($1, $2, CASE WHEN $3::integer = 2 THEN -1 ELSE $3::integer END,"
    )
    monkeypatch.setattr(keybackup_module, "INSERT_VERSION", failing)
    with pytest.raises(asyncpg.CheckViolationError):
        await keys.backups.restore(blob, f"{prefix}-new", force=False)
    assert await _count(pg_pool, f"{prefix}-new") == (0, 0)

    # Forced over the existing key: its delete is rolled back with the rest.
    with pytest.raises(asyncpg.CheckViolationError):
        await keys.backups.restore(blob, None, force=True)
    assert await keys.store.read(name) == before
    assert await _count(pg_pool, name) == (1, 3)
