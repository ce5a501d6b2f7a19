"""The keystore on the real PostgreSQL: nothing in the clear, no lost or duplicated
versions, idempotent creation, all-or-nothing writes, settings that refuse."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from x0_common.testing.stack import StackEndpoints
from x0_crypto.adapters import keyrows
from x0_crypto.domain import ALL_ALGORITHMS, Registry, UnknownAlgorithm, envelope
from x0_crypto.domain.managed import ConfigChange, KeySettings
from x0_crypto.errors import KeyExists, KeyNotFound, OperationNotAllowed

from .keys_support import KEK, KeysUnderTest

pytestmark = pytest.mark.integration


async def _rows_of(pool: asyncpg.Pool, prefix: str) -> list[tuple[str, bytes]]:
    """Every stored column of this test's keys: raw bytes, and each row as text."""
    found: list[tuple[str, bytes]] = []
    for table in ("keys", "key_versions"):
        rows = await pool.fetch(
            f"SELECT t::text AS whole, t.* FROM crypto.{table} t WHERE name LIKE $1",  # noqa: S608
            prefix + "%",
        )
        for row in rows:
            found.append((table, str(row["whole"]).encode()))
            for column, value in row.items():
                if column == "whole":
                    continue
                raw = value if isinstance(value, bytes) else str(value).encode()
                found.append((f"{table}.{column}", raw))
    return found


async def test_no_secret_key_is_stored_in_the_clear(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str
) -> None:
    exportable = KeySettings(exportable=True)
    secrets: dict[tuple[str, int], bytes] = {}
    for index, key_type in enumerate(ALL_ALGORITHMS):
        name = f"{prefix}-{index}"
        await keys.store.create(name, key_type, exportable, None)
        await keys.store.rotate(name)
        _, exported = await keys.backups.export(name, None)
        assert sorted(exported) == [1, 2]
        secrets |= {(name, version): secret for version, secret in exported.items()}

    columns = await _rows_of(pg_pool, prefix)
    assert len(columns) > 8 * 2 * 5
    for secret in secrets.values():
        # The whole key, its first 16 bytes (ML-KEM-512's expanded key embeds its public
        # key further in), and the hex text PostgreSQL would print for a bytea.
        for needle in (secret, secret[:16], secret.hex().encode()):
            offenders = [where for where, raw in columns if needle in raw]
            assert not offenders, f"secret bytes found in {offenders}"

    # What is stored is the secret's envelope: it opens with the KEK, and only for its
    # own name and version.
    rows = await pg_pool.fetch(
        "SELECT v.name, v.version, k.type, v.encrypted_secret_key FROM crypto.key_versions v"
        " JOIN crypto.keys k USING (name) WHERE v.name LIKE $1",
        prefix + "%",
    )
    assert len(rows) == len(secrets)
    for row in rows:
        sealed = bytes(row["encrypted_secret_key"])
        opened = envelope.open_sealed(
            KEK, name=row["name"], version=row["version"], key_type=row["type"], sealed=sealed
        )
        assert opened == secrets[(row["name"], row["version"])]
        with pytest.raises(envelope.EnvelopeError):
            envelope.open_sealed(
                KEK,
                name=row["name"],
                version=3 - row["version"],
                key_type=row["type"],
                sealed=sealed,
            )


async def test_a_redelivered_rotation_adds_no_second_version(
    stack: StackEndpoints, registry: Registry, prefix: str
) -> None:
    # A crash between the reply and the offset commit hands the same message (the same
    # request id) to another worker, maybe while the first still runs: four at once.
    pools = [
        await asyncpg.create_pool(stack.postgres_dsn, min_size=1, max_size=2) for _ in range(4)
    ]
    try:
        stores = [KeysUnderTest(pool, registry).store for pool in pools]
        name = f"{prefix}-once"
        await stores[0].create(name, "X-Wing", KeySettings(), None)

        first = await asyncio.gather(*(store.rotate_once(name, "request-a") for store in stores))
        again, rotated_again = await stores[1].rotate_once(name, "request-a")
        other, rotated_other = await stores[2].rotate_once(name, "request-b")

        assert sorted(rotated for _, rotated in first) == [False, False, False, True]
        assert {key.latest_version for key, _ in first} == {2}
        assert (again.latest_version, rotated_again) == (2, False)
        assert (other.latest_version, rotated_other) == (3, True)
        versions = await pools[0].fetch(
            "SELECT version, rotate_request_id FROM crypto.key_versions"
            " WHERE name = $1 ORDER BY version",
            name,
        )
        assert [tuple(row) for row in versions] == [
            (1, None),
            (2, "request-a"),
            (3, "request-b"),
        ]
        # Without a request id (the auto-rotation sweep, tools) every call rotates.
        assert (await stores[3].rotate(name)).latest_version == 4
        with pytest.raises(KeyNotFound):
            await stores[0].rotate_once(f"{prefix}-missing", "request-a")
    finally:
        for pool in pools:
            await pool.close()


async def test_concurrent_rotations_neither_lose_nor_duplicate_versions(
    stack: StackEndpoints, registry: Registry, prefix: str
) -> None:
    pools = [
        await asyncpg.create_pool(stack.postgres_dsn, min_size=1, max_size=5) for _ in range(4)
    ]
    try:
        stores = [KeysUnderTest(pool, registry).store for pool in pools]
        name = f"{prefix}-rot"
        await stores[0].create(name, "ML-KEM-768", KeySettings(), None)
        results = await asyncio.gather(*(stores[i % len(stores)].rotate(name) for i in range(20)))
        # Each call saw its own new version as latest: 2..21, each exactly once.
        assert sorted(key.latest_version for key in results) == list(range(2, 22))
        stored = await pools[0].fetch(
            "SELECT version, public_key FROM crypto.key_versions WHERE name = $1 ORDER BY version",
            name,
        )
        assert [row["version"] for row in stored] == list(range(1, 22))
        assert len({bytes(row["public_key"]) for row in stored}) == 21
        final = await stores[0].read(name)
        assert final.latest_version == 21
        # Every version's secret opens for its own version.
        loaded = await stores[0].load(name)
        for version in range(1, 22):
            loaded.secret_key(version)
    finally:
        for pool in pools:
            await pool.close()


async def test_create_is_idempotent_by_request_id(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str
) -> None:
    name, request_id = f"{prefix}-a", f"req-{prefix}"
    first, created = await keys.store.create(name, "X-Wing", KeySettings(), request_id)
    again, created_again = await keys.store.create(name, "X-Wing", KeySettings(), request_id)
    assert (created, created_again) == (True, False)
    assert again.versions == first.versions
    assert await pg_pool.fetchval("SELECT count(*) FROM crypto.keys WHERE name = $1", name) == 1

    for other_request in (f"other-{prefix}", None):
        with pytest.raises(KeyExists) as caught:
            await keys.store.create(name, "X-Wing", KeySettings(), other_request)
        assert (caught.value.http_status, caught.value.details["reason"]) == (409, "key_exists")
    with pytest.raises(KeyExists) as reused:
        await keys.store.create(f"{prefix}-b", "X-Wing", KeySettings(), request_id)
    assert reused.value.details["reason"] == "request_id_reused"
    with pytest.raises(KeyExists):
        await keys.store.create(name, "ML-KEM-768", KeySettings(), request_id)
    assert await keys.store.read(name) == first


async def test_concurrent_creates_with_one_request_id_make_one_key(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str
) -> None:
    name = f"{prefix}-c"
    results = await asyncio.gather(
        *(keys.store.create(name, "ML-DSA-65", KeySettings(), f"r-{prefix}") for _ in range(8))
    )
    assert sorted(created for _, created in results) == [False] * 7 + [True]
    assert len({key.versions[0].public_key for key, _ in results}) == 1
    assert (
        await pg_pool.fetchval("SELECT count(*) FROM crypto.key_versions WHERE name = $1", name)
        == 1
    )


async def test_failed_create_leaves_no_rows(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"{prefix}-f"
    with pytest.raises(UnknownAlgorithm):
        await keys.store.create(name, "RSA-2048", KeySettings(), None)
    # The version insert fails in PostgreSQL after the key row went in (a CHECK
    # violation on the version number): the transaction must take the key row back.
    failing = keyrows.INSERT_VERSION.replace("($1, $2, $3,", "($1, $2, -($3::integer),")
    monkeypatch.setattr(keyrows, "INSERT_VERSION", failing)
    with pytest.raises(asyncpg.CheckViolationError):
        await keys.store.create(name, "ML-KEM-768", KeySettings(), f"r-{prefix}")
    monkeypatch.undo()
    assert await pg_pool.fetchval("SELECT count(*) FROM crypto.keys WHERE name = $1", name) == 0
    # The request id was not burnt either: the retry creates the key.
    _, created = await keys.store.create(name, "ML-KEM-768", KeySettings(), f"r-{prefix}")
    assert created


async def test_postgres_refuses_a_key_without_its_latest_version(
    pg_pool: asyncpg.Pool, prefix: str
) -> None:
    async with pg_pool.acquire() as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            async with conn.transaction():
                await conn.execute(
                    "INSERT INTO crypto.keys (name, type, latest_version) VALUES ($1, 'X-Wing', 1)",
                    f"{prefix}-orphan",
                )
    assert (
        await pg_pool.fetchval("SELECT count(*) FROM crypto.keys WHERE name LIKE $1", prefix + "%")
        == 0
    )


async def test_delete_only_when_allowed(
    keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str
) -> None:
    name = f"{prefix}-d"
    await keys.store.create(name, "ML-KEM-1024", KeySettings(), None)
    await keys.store.rotate(name)
    with pytest.raises(OperationNotAllowed) as caught:
        await keys.store.delete(name)
    assert (caught.value.http_status, caught.value.details["reason"]) == (
        409,
        "deletion_not_allowed",
    )
    assert (await keys.store.read(name)).latest_version == 2
    await keys.store.configure(name, ConfigChange(deletion_allowed=True))
    assert await keys.store.delete(name) is True
    for table in ("keys", "key_versions"):
        count = await pg_pool.fetchval(
            f"SELECT count(*) FROM crypto.{table} WHERE name = $1",  # noqa: S608
            name,
        )
        assert count == 0
    assert await keys.store.delete(name) is False
    with pytest.raises(KeyNotFound):
        await keys.store.read(name)


async def test_export_only_when_exportable(keys: KeysUnderTest, prefix: str) -> None:
    name = f"{prefix}-e"
    await keys.store.create(name, "ML-DSA-44", KeySettings(), None)
    await keys.store.rotate(name)
    with pytest.raises(OperationNotAllowed) as caught:
        await keys.backups.export(name, None)
    assert (caught.value.http_status, caught.value.details["reason"]) == (409, "not_exportable")
    await keys.store.configure(name, ConfigChange(exportable=True))
    key, secrets = await keys.backups.export(name, None)
    assert sorted(secrets) == [1, 2]
    _, only_first = await keys.backups.export(name, 1)
    assert only_first == {1: secrets[1]}
    with pytest.raises(KeyNotFound):
        await keys.backups.export(name, 3)
    # The exported secret is the one behind the published public key.
    scheme = keys.deps.algorithms.signature("ML-DSA-44")
    signature = scheme.sign(secrets[2], b"m")
    assert scheme.verify(key.version(2).public_key, b"m", signature)
    with pytest.raises(OperationNotAllowed):
        await keys.store.configure(name, ConfigChange(exportable=False))
