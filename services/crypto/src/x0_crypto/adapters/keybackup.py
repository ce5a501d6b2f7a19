"""Secret keys leaving or re-entering the store: export, backup and restore.

* Export hands out secret keys in the clear, so only for ``exportable`` keys (else
  :class:`OperationNotAllowed`, 409).
* Backup wraps every setting and version, secret keys included, in one blob that only
  this deployment's KEK opens (format in :mod:`x0_crypto.domain.backup`); made under
  the current KEK, restored under whichever configured KEK (current or previous) made it.
* Restore validates the whole blob before writing, then writes the key and all its
  versions in one transaction; it refuses an existing name (:class:`KeyExists`, 409)
  unless ``force``, which replaces that key in the same transaction. A new name counts
  against the tenant's key quota.
* Backups are bound to their tenant: a blob restores only into the tenant it was made
  in (another tenant's is ``InvalidBackup``, 400).
"""

from __future__ import annotations

import logging

from x0_crypto.adapters.keyrows import (
    INSERT_KEY,
    INSERT_VERSION,
    SELECT_KEY,
    database_errors,
    key_from_rows,
)
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.domain import Registry, envelope
from x0_crypto.domain.backup import (
    BackupDocument,
    BackupVersion,
    decrypt_backup,
    encrypt_backup,
    validate,
)
from x0_crypto.domain.managed import ManagedKey
from x0_crypto.errors import InvalidBackup, KeyExists, KeyNotFound

logger = logging.getLogger(__name__)


class KeyBackups:
    """Export, backup and restore on top of a :class:`KeyStore` (and its tenant)."""

    def __init__(
        self, store: KeyStore, kek: envelope.Keyring | bytes, algorithms: Registry
    ) -> None:
        self._store = store
        self._kek = kek
        self._algorithms = algorithms

    def _decrypt(self, blob: bytes) -> BackupDocument:
        """The backup's document, opened with whichever configured KEK made it (the
        current one first): a backup made before a KEK rotation restores while the old
        KEK is still among the previous ones."""
        keks = list(envelope.Keyring.of(self._kek).all())
        for kek in keks[:-1]:
            try:
                return decrypt_backup(kek, blob, self._store.tenant)
            except InvalidBackup:
                continue
        return decrypt_backup(keks[-1], blob, self._store.tenant)

    def of(self, tenant: str) -> KeyBackups:
        """The same, for ``tenant``'s keys."""
        return KeyBackups(self._store.of(tenant), self._kek, self._algorithms)

    async def export(self, name: str, version: int | None) -> tuple[ManagedKey, dict[int, bytes]]:
        """Secret keys by version (one, or all) of an exportable key."""
        loaded = await self._store.load(name, None if version is None else [version])
        loaded.key.require_exportable()
        wanted = [v.version for v in loaded.key.versions] if version is None else [version]
        if version is not None:
            loaded.key.version(version)
        return loaded.key, {number: loaded.secret_key(number) for number in wanted}

    async def backup(self, name: str) -> bytes:
        """The encrypted backup of every version of ``name``."""
        loaded = await self._store.load(name)
        key = loaded.key
        document = BackupDocument(
            name=key.name,
            type=key.type,
            exportable=key.settings.exportable,
            deletion_allowed=key.settings.deletion_allowed,
            auto_rotate_period_seconds=key.settings.auto_rotate_period_seconds,
            min_decryption_version=key.settings.min_decryption_version,
            latest_version=key.latest_version,
            created_at=key.created_at,
            versions=[
                BackupVersion(
                    version=version.version,
                    public_key=version.public_key,
                    secret_key=loaded.secret_key(version.version),
                    created_at=version.created_at,
                )
                for version in key.versions
            ],
        )
        logger.info("managed key backed up", extra={"key_name": name})
        return encrypt_backup(envelope.Keyring.of(self._kek).current, document, self._store.tenant)

    async def restore(self, blob: bytes, name: str | None, *, force: bool) -> ManagedKey:
        """Restore ``blob`` under ``name`` (its own when ``None``); all or nothing."""
        document = self._decrypt(blob)
        validate(document, self._algorithms)
        target = name or document.name
        # Sealed again for the target name: a restored row is bound to where it now lives.
        tenant = self._store.tenant
        rows = [
            (
                tenant,
                target,
                version.version,
                version.public_key,
                self._store.seal(target, version.version, document.type, version.secret_key),
                version.created_at,
            )
            for version in document.versions
        ]
        pool = self._store.pool
        async with database_errors("restore"), pool.acquire() as conn, conn.transaction():
            await self._store.check_quota(conn, target)
            if force:
                await conn.execute(
                    "DELETE FROM crypto.keys WHERE tenant = $1 AND name = $2", tenant, target
                )
            inserted = await conn.fetchval(
                INSERT_KEY,
                tenant,
                target,
                document.type,
                document.exportable,
                document.deletion_allowed,
                document.auto_rotate_period_seconds,
                document.min_decryption_version,
                document.latest_version,
                None,
                document.created_at,
            )
            if inserted is None:
                raise KeyExists(
                    f"a key named {target!r} exists (restore with force to replace it)",
                    reason="key_exists",
                    name=target,
                )
            await conn.executemany(INSERT_VERSION, rows)
            restored = key_from_rows(await conn.fetch(SELECT_KEY, tenant, target, None, False))
        if restored is None:  # pragma: no cover - the transaction above just wrote it
            raise KeyNotFound(target)
        logger.info("managed key restored", extra={"key_name": target, "forced": force})
        return restored
