"""Rows of ``crypto.keys`` / ``crypto.key_versions`` (``migrations/001_keys.sql``,
``003_tenants.sql``) as domain records (secret keys sealed until asked for), the
statements that read and write them, and the translation of PostgreSQL failures into
the shared error tree.

Every statement names the tenant (``$1``): keys are keyed by ``(tenant, name)``, and a
key of another tenant is simply not there.

Shared by the keystore (:mod:`.keystore`) and backups (:mod:`.keybackup`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from x0_common.postgres import unavailable_when_transient
from x0_common.principal import DEFAULT_TENANT
from x0_crypto.domain import envelope
from x0_crypto.domain.managed import KeySettings, KeyVersion, ManagedKey
from x0_crypto.errors import EnvelopeError, KeyNotFound, SealedKeyCorrupt

logger = logging.getLogger(__name__)

# One statement, so one snapshot: the key row and the versions asked for (all when
# $3 is NULL; the latest always). ``$4`` chooses whether sealed secret keys come too.
SELECT_KEY = """
SELECT k.name, k.type, k.exportable, k.deletion_allowed, k.auto_rotate_period_seconds,
       k.min_decryption_version, k.latest_version, k.created_at, k.updated_at,
       v.version, v.public_key, v.created_at AS version_created_at,
       CASE WHEN $4 THEN v.encrypted_secret_key END AS sealed
FROM crypto.keys k
LEFT JOIN crypto.key_versions v
       ON v.tenant = k.tenant AND v.name = k.name
      AND ($3::integer[] IS NULL OR v.version = ANY($3) OR v.version = k.latest_version)
WHERE k.tenant = $1 AND k.name = $2
ORDER BY v.version
"""

INSERT_KEY = """
INSERT INTO crypto.keys (tenant, name, type, exportable, deletion_allowed,
                         auto_rotate_period_seconds, min_decryption_version, latest_version,
                         create_request_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, COALESCE($10, now()), now())
ON CONFLICT DO NOTHING
RETURNING name
"""

INSERT_VERSION = """
INSERT INTO crypto.key_versions (tenant, name, version, public_key, encrypted_secret_key,
                                 created_at)
VALUES ($1, $2, $3, $4, $5, COALESCE($6, now()))
"""

# A manual rotation's version, with the request that made it (migration 004).
INSERT_ROTATED_VERSION = """
INSERT INTO crypto.key_versions (tenant, name, version, public_key, encrypted_secret_key,
                                 rotate_request_id)
VALUES ($1, $2, $3, $4, $5, $6)
"""
ROTATED_BY = (
    "SELECT version FROM crypto.key_versions"
    " WHERE tenant = $1 AND name = $2 AND rotate_request_id = $3"
)

# The key row alone: a FOR UPDATE over a join re-checks a row that a concurrent
# rotation changed against the stale joined version row, and would drop it.
LOCK_KEY = (
    "SELECT type, latest_version, auto_rotate_period_seconds FROM crypto.keys"
    " WHERE tenant = $1 AND name = $2 FOR UPDATE"
)
LOCK_KEY_IF_FREE = LOCK_KEY + " SKIP LOCKED"

SET_LATEST = (
    "UPDATE crypto.keys SET latest_version = $3, updated_at = now() WHERE tenant = $1 AND name = $2"
)

SET_SETTINGS = """
UPDATE crypto.keys
SET exportable = $3, deletion_allowed = $4, auto_rotate_period_seconds = $5,
    min_decryption_version = $6, updated_at = now()
WHERE tenant = $1 AND name = $2
"""

VERSION_IS_DUE = """
SELECT created_at <= now() - make_interval(secs => $4::double precision)
FROM crypto.key_versions WHERE tenant = $1 AND name = $2 AND version = $3
"""

# Every tenant's keys: the auto-rotation sweep serves them all.
DUE_FOR_ROTATION = """
SELECT k.tenant, k.name FROM crypto.keys k
JOIN crypto.key_versions v
  ON v.tenant = k.tenant AND v.name = k.name AND v.version = k.latest_version
WHERE k.auto_rotate_period_seconds IS NOT NULL
  AND v.created_at <= now() - make_interval(secs => k.auto_rotate_period_seconds)
ORDER BY v.created_at
LIMIT $1
"""

# Serialises the key creations (and restores) of one tenant, so that its quota holds
# under concurrent creates; released at the end of the transaction.
LOCK_TENANT_KEYS = "SELECT pg_advisory_xact_lock(hashtextextended('x0-crypto-keys:' || $1, 0))"
COUNT_KEYS = "SELECT count(*) FROM crypto.keys WHERE tenant = $1"


def database_errors(operation: str) -> AbstractAsyncContextManager[None]:
    """Transient PostgreSQL failures of the key store as :class:`Unavailable`."""
    return unavailable_when_transient("key store", operation)


def key_from_rows(rows: Iterable[Mapping[str, Any]]) -> ManagedKey | None:
    """The key described by ``SELECT_KEY``'s rows (``None`` for no rows)."""
    rows = list(rows)
    if not rows:
        return None
    first = rows[0]
    versions = tuple(
        KeyVersion(
            version=row["version"],
            public_key=bytes(row["public_key"]),
            created_at=row["version_created_at"],
        )
        for row in rows
        if row["version"] is not None
    )
    return ManagedKey(
        name=first["name"],
        type=first["type"],
        settings=KeySettings(
            exportable=first["exportable"],
            deletion_allowed=first["deletion_allowed"],
            auto_rotate_period_seconds=first["auto_rotate_period_seconds"],
            min_decryption_version=first["min_decryption_version"],
        ),
        latest_version=first["latest_version"],
        created_at=first["created_at"],
        updated_at=first["updated_at"],
        versions=versions,
    )


def sealed_from_rows(rows: Iterable[Mapping[str, Any]]) -> dict[int, bytes]:
    """Version -> sealed secret key, from ``SELECT_KEY`` rows fetched with ``$3 = true``."""
    return {
        row["version"]: bytes(row["sealed"])
        for row in rows
        if row["version"] is not None and row["sealed"] is not None
    }


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A key of ``tenant`` with the versions a request needs, their secret keys still sealed."""

    key: ManagedKey
    _sealed: dict[int, bytes] = field(repr=False)
    _kek: envelope.Keyring | bytes = field(repr=False)
    tenant: str = DEFAULT_TENANT

    def secret_key(self, version: int) -> bytes:
        """The version's secret key; :class:`SealedKeyCorrupt` (500) if its row fails to open."""
        sealed = self._sealed.get(version)
        if sealed is None:
            raise KeyNotFound(self.key.name, version)
        try:
            return envelope.open_sealed(
                self._kek,
                tenant=self.tenant,
                name=self.key.name,
                version=version,
                key_type=self.key.type,
                sealed=sealed,
            )
        except EnvelopeError:
            logger.error(
                "stored secret key failed its integrity check (its KEK is not configured,"
                " or the row was tampered with)",
                extra={"key_name": self.key.name, "key_version": version},
            )
            raise SealedKeyCorrupt(self.key.name, version) from None
