"""Managed keys in PostgreSQL: create, read, rotate, configure, delete, and unsealing.

Consistency rules, all enforced here in transactions:

* Create is one transaction (key row + version 1); ``INSERT ... ON CONFLICT DO
  NOTHING`` makes concurrent creates of one name or one request id race-free: the
  loser reads the winner's row and either replays it (same request id, name and
  type) or answers :class:`KeyExists` (409).
* Rotate locks the key row (``SELECT ... FOR UPDATE``) and inserts
  ``latest_version + 1`` under the lock, so concurrent rotations serialise and never
  lose or duplicate a version. The automatic sweep uses ``SKIP LOCKED`` and re-checks
  the version's age under the lock, so replicas sweeping together rotate a key once.
* A deferred foreign key (``keys_latest_version_exists``) makes PostgreSQL itself
  refuse to commit a key whose latest version row is missing.
* Tenancy: a store is bound to one tenant (:meth:`KeyStore.of`); every statement
  names it, so another tenant's key is ``KeyNotFound`` (404), never a 403. Create takes
  a per-tenant advisory lock and counts the tenant's keys under it, so the quota
  (``max_keys``) holds under concurrent creates.

Secret keys are sealed (:mod:`x0_crypto.domain.envelope`) before they reach a
statement and unsealed only on the way to a crypto operation; they never appear in
logs or exceptions.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import KW_ONLY, dataclass, field, replace

import asyncpg

from x0_common.errors import Unavailable
from x0_common.principal import DEFAULT_TENANT
from x0_crypto.adapters import keyrows
from x0_crypto.adapters.keyrows import LoadedKey, database_errors, key_from_rows, sealed_from_rows
from x0_crypto.domain import Registry, envelope
from x0_crypto.domain.algorithms import Kind
from x0_crypto.domain.managed import ConfigChange, KeySettings, ManagedKey, check_period, check_type
from x0_crypto.domain.ports import PublicKeyInfo
from x0_crypto.errors import KeyExists, KeyNotFound, KeyQuotaExceeded, OperationNotAllowed
from x0_crypto.metrics import CryptoMetrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class KeyStore:
    """One tenant's managed keys on an asyncpg pool, sealed under ``kek`` (a keyring:
    new versions under its current KEK, old ones opened with whichever wrapped them)."""

    pool: asyncpg.Pool
    kek: envelope.Keyring | bytes = field(repr=False)
    algorithms: Registry
    metrics: CryptoMetrics | None = None
    _: KW_ONLY
    tenant: str = DEFAULT_TENANT
    max_keys: int | None = None

    def of(self, tenant: str) -> KeyStore:
        """The same store, bound to ``tenant``'s keys."""
        return replace(self, tenant=tenant)

    # -- reading ----------------------------------------------------------------------

    async def read(self, name: str) -> ManagedKey:
        """The key with every version's public key; :class:`KeyNotFound` if none."""
        async with database_errors("read"):
            rows = await self.pool.fetch(keyrows.SELECT_KEY, self.tenant, name, None, False)
        return _found(name, key_from_rows(rows))

    async def load(
        self, name: str, versions: list[int] | None = None, *, secrets: bool = True
    ) -> LoadedKey:
        """The key with ``versions`` (all when ``None``) and the latest; with ``secrets``,
        their secret keys too (sealed until :meth:`LoadedKey.secret_key` opens one)."""
        async with database_errors("load"):
            rows = await self.pool.fetch(keyrows.SELECT_KEY, self.tenant, name, versions, secrets)
        return LoadedKey(
            _found(name, key_from_rows(rows)), sealed_from_rows(rows), self.kek, self.tenant
        )

    async def names(self) -> list[str]:
        """Every key name of the tenant, sorted."""
        async with database_errors("list"):
            rows = await self.pool.fetch(
                "SELECT name FROM crypto.keys WHERE tenant = $1 ORDER BY name", self.tenant
            )
        return [row["name"] for row in rows]

    async def count(self) -> int:
        """How many keys the tenant holds (all replicas' view: it is the table's)."""
        async with database_errors("count"):
            return int(await self.pool.fetchval(keyrows.COUNT_KEYS, self.tenant))

    async def count_all(self) -> int:
        """How many keys are stored, every tenant's (the ``managed_keys`` gauge)."""
        async with database_errors("count"):
            return int(await self.pool.fetchval("SELECT count(*) FROM crypto.keys"))

    async def public_key(self, name: str, version: int | None = None) -> PublicKeyInfo:
        """Type, version and public key (``ManagedKeys`` port of the mesh handlers)."""
        wanted = [] if version is None else [version]
        key = (await self.load(name, wanted, secrets=False)).key
        found = key.version(key.latest_version if version is None else version)
        return PublicKeyInfo(key.type, found.version, found.public_key)

    async def private_key(self, name: str, version: int) -> bytes:
        """The version's secret key, unsealed (``ManagedKeys`` port; no retirement check)."""
        loaded = await self.load(name, [version])
        loaded.key.version(version)
        return loaded.secret_key(version)

    # -- writing ----------------------------------------------------------------------

    async def create(
        self, name: str, key_type: str, settings: KeySettings, request_id: str | None
    ) -> tuple[ManagedKey, bool]:
        """The key, and whether this call created it (``False``: a replay of ``request_id``)."""
        check_type(key_type)
        check_period(settings.auto_rotate_period_seconds)
        public_key, sealed = self._new_version(name, 1, key_type)
        async with database_errors("create"), self.pool.acquire() as conn, conn.transaction():
            await self.check_quota(conn, name)
            created = await conn.fetchval(
                keyrows.INSERT_KEY,
                self.tenant,
                name,
                key_type,
                settings.exportable,
                settings.deletion_allowed,
                settings.auto_rotate_period_seconds,
                1,
                1,
                request_id,
                None,
            )
            if created is not None:
                await conn.execute(
                    keyrows.INSERT_VERSION, self.tenant, name, 1, public_key, sealed, None
                )
                return await self._read_in(conn, name), True
            return await self._replay(conn, name, key_type, request_id), False

    async def check_quota(self, conn: asyncpg.Connection, name: str) -> None:
        """Under the tenant's creation lock (held until the transaction ends): refuse a
        new name once the tenant holds ``max_keys`` keys. An existing name passes (its
        create replays or conflicts; a forced restore replaces it)."""
        if self.max_keys is None:
            return
        await conn.execute(keyrows.LOCK_TENANT_KEYS, self.tenant)
        exists = await conn.fetchval(
            "SELECT 1 FROM crypto.keys WHERE tenant = $1 AND name = $2", self.tenant, name
        )
        if exists is None and await conn.fetchval(keyrows.COUNT_KEYS, self.tenant) >= self.max_keys:
            raise KeyQuotaExceeded(self.max_keys)

    async def _replay(
        self, conn: asyncpg.Connection, name: str, key_type: str, request_id: str | None
    ) -> ManagedKey:
        """After a conflicting insert: the key this request id created, or the 409."""
        if request_id is not None:
            owner = await conn.fetchrow(
                "SELECT name, type FROM crypto.keys WHERE tenant = $1 AND create_request_id = $2",
                self.tenant,
                request_id,
            )
            if owner is not None:
                if (owner["name"], owner["type"]) != (name, key_type):
                    raise KeyExists(
                        "request_id already created a different key",
                        reason="request_id_reused",
                        name=name,
                    )
                return await self._read_in(conn, name)
        exists = await conn.fetchval(
            "SELECT 1 FROM crypto.keys WHERE tenant = $1 AND name = $2", self.tenant, name
        )
        if exists is None:
            # The conflicting row went away between our insert and this read; try again.
            raise Unavailable("concurrent change to the key, retry", details={"reason": "race"})
        raise KeyExists(f"a key named {name!r} exists", reason="key_exists", name=name)

    async def rotate(self, name: str) -> ManagedKey:
        """Add version ``latest + 1``; :class:`KeyNotFound` if there is no such key."""
        rotated = await self._rotate(name, only_if_due=False)
        if rotated is None:
            raise KeyNotFound(name)
        return rotated[0]

    async def rotate_once(self, name: str, request_id: str) -> tuple[ManagedKey, bool]:
        """:meth:`rotate` for the request ``request_id``, and whether this call rotated:
        ``False`` when the request had rotated the key already (a redelivery), which
        then adds no version."""
        rotated = await self._rotate(name, only_if_due=False, request_id=request_id)
        if rotated is None:
            raise KeyNotFound(name)
        return rotated

    async def rotate_if_due(self, name: str) -> ManagedKey | None:
        """Rotate if the latest version is older than the key's period and nobody else is
        rotating it right now; ``None`` when skipped."""
        rotated = await self._rotate(name, only_if_due=True)
        return None if rotated is None else rotated[0]

    async def _rotate(
        self, name: str, *, only_if_due: bool, request_id: str | None = None
    ) -> tuple[ManagedKey, bool] | None:
        lock = keyrows.LOCK_KEY_IF_FREE if only_if_due else keyrows.LOCK_KEY
        async with database_errors("rotate"), self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(lock, self.tenant, name)
            if row is None:
                return None
            if only_if_due and not await self._due(conn, name, row):
                return None
            # Under the key's row lock: a concurrent redelivery waits, then finds this.
            done = request_id is not None and await conn.fetchval(
                keyrows.ROTATED_BY, self.tenant, name, request_id
            )
            if done:
                rows = await conn.fetch(keyrows.SELECT_KEY, self.tenant, name, None, False)
                return _found(name, key_from_rows(rows)), False
            version = row["latest_version"] + 1
            public_key, sealed = self._new_version(name, version, row["type"])
            await conn.execute(
                keyrows.INSERT_ROTATED_VERSION,
                self.tenant,
                name,
                version,
                public_key,
                sealed,
                request_id,
            )
            await conn.execute(keyrows.SET_LATEST, self.tenant, name, version)
            rows = await conn.fetch(keyrows.SELECT_KEY, self.tenant, name, None, False)
        logger.info("managed key rotated", extra={"key_name": name, "key_version": version})
        return _found(name, key_from_rows(rows)), True

    async def _due(self, conn: asyncpg.Connection, name: str, row: asyncpg.Record) -> bool:
        period = row["auto_rotate_period_seconds"]
        if period is None:
            return False
        due = await conn.fetchval(
            keyrows.VERSION_IS_DUE, self.tenant, name, row["latest_version"], period
        )
        return bool(due)

    async def due_for_rotation(self, limit: int = 100) -> list[tuple[str, str]]:
        """``(tenant, name)`` of every tenant's keys whose latest version is older than
        their period (an unlocked read)."""
        async with database_errors("due_for_rotation"):
            rows = await self.pool.fetch(keyrows.DUE_FOR_ROTATION, limit)
        return [(row["tenant"], row["name"]) for row in rows]

    async def configure(self, name: str, change: ConfigChange) -> ManagedKey:
        """Apply ``change`` under the key's row lock (checks see the settings they change)."""
        async with database_errors("configure"), self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "SELECT 1 FROM crypto.keys WHERE tenant = $1 AND name = $2 FOR UPDATE",
                self.tenant,
                name,
            )
            rows = await conn.fetch(keyrows.SELECT_KEY, self.tenant, name, [], False)
            key = _found(name, key_from_rows(rows))
            settings = change.apply(key)
            await conn.execute(
                keyrows.SET_SETTINGS,
                self.tenant,
                name,
                settings.exportable,
                settings.deletion_allowed,
                settings.auto_rotate_period_seconds,
                settings.min_decryption_version,
            )
            return await self._read_in(conn, name)

    async def delete(self, name: str) -> bool:
        """Delete every version; ``False`` if there was no such key (delete is idempotent).

        :class:`OperationNotAllowed` (409) unless the key allows deletion.
        """
        async with database_errors("delete"), self.pool.acquire() as conn, conn.transaction():
            allowed = await conn.fetchval(
                "SELECT deletion_allowed FROM crypto.keys WHERE tenant = $1 AND name = $2"
                " FOR UPDATE",
                self.tenant,
                name,
            )
            if allowed is None:
                return False
            if not allowed:
                raise OperationNotAllowed(
                    f"key {name!r} does not allow deletion (set deletion_allowed first)",
                    reason="deletion_not_allowed",
                    name=name,
                )
            await conn.execute(
                "DELETE FROM crypto.keys WHERE tenant = $1 AND name = $2", self.tenant, name
            )
        logger.info("managed key deleted", extra={"key_name": name})
        return True

    def _new_version(self, name: str, version: int, key_type: str) -> tuple[bytes, bytes]:
        """A fresh key pair: the public key, and the secret key sealed for this version."""
        kind = self.algorithms.kind(key_type)
        backend = (
            self.algorithms.kem(key_type)
            if kind is Kind.KEM
            else self.algorithms.signature(key_type)
        )
        with self.metrics.operation(key_type, "key_generate") if self.metrics else nullcontext():
            public_key, secret_key = backend.keypair()
        return public_key, self.seal(name, version, key_type, secret_key)

    def seal(self, name: str, version: int, key_type: str, secret_key: bytes) -> bytes:
        """``secret_key`` sealed for this tenant, key name, version and type (for restores)."""
        return envelope.seal(
            self.kek,
            tenant=self.tenant,
            name=name,
            version=version,
            key_type=key_type,
            secret_key=secret_key,
        )

    async def _read_in(self, conn: asyncpg.Connection, name: str) -> ManagedKey:
        """The key as this transaction sees it (after its own writes)."""
        rows = await conn.fetch(keyrows.SELECT_KEY, self.tenant, name, None, False)
        return _found(name, key_from_rows(rows))


def _found(name: str, key: ManagedKey | None) -> ManagedKey:
    if key is None:
        raise KeyNotFound(name)
    return key
