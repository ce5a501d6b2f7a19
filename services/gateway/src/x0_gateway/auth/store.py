"""Tenants and API keys in the gateway's own PostgreSQL schema ``gateway``.

Used by the gateway (verification, the admin routes) and by ``x0-gateway-admin``
(bootstrap, straight to PostgreSQL). Secrets never reach this module's callers
again: a key is returned in full once, by :meth:`ApiKeyStore.create_key`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

import asyncpg
from pydantic import BaseModel, Field

from x0_common.errors import Conflict, InvalidInput, NotFound
from x0_common.postgres import unavailable_when_transient
from x0_common.principal import GRANTABLE_SCOPES, TenantId
from x0_gateway.auth import apikeys

SCHEMA: Final = "gateway"
_TENANT_COLUMNS: Final = "id, name, created_at, quotas::text, disabled_at"
_KEY_COLUMNS: Final = (
    "id, hint, name, tenant, scopes, development, created_at, last_used_at, expires_at, revoked_at"
)
_INSERT_KEY: Final = (
    "INSERT INTO gateway.api_keys"
    " (id, digest, hint, name, tenant, scopes, development, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    " RETURNING id, hint, name, tenant, scopes, development, created_at, last_used_at,"
    " expires_at, revoked_at"
)
_REVOKE_KEY: Final = (
    "UPDATE gateway.api_keys SET revoked_at = coalesce(revoked_at, now())"
    " WHERE id = $1"
    " RETURNING id, hint, name, tenant, scopes, development, created_at, last_used_at,"
    " expires_at, revoked_at"
)


class Tenant(BaseModel):
    """A tenant: every managed key, collection and mesh belongs to one."""

    id: TenantId
    name: str
    created_at: datetime
    quotas: dict[str, Any] = Field(default_factory=dict)
    disabled_at: datetime | None = Field(
        default=None, description="while set, every credential of the tenant is refused"
    )


class ApiKey(BaseModel):
    """An API key as listed: never its secret."""

    id: uuid.UUID
    hint: str = Field(description="the key's prefix and first characters")
    name: str
    tenant: TenantId
    scopes: list[str]
    development: bool = Field(description="the development key `make up` creates")
    created_at: datetime
    last_used_at: datetime | None = Field(description="to the minute")
    expires_at: datetime | None
    revoked_at: datetime | None

    def usable_at(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class CreatedApiKey(ApiKey):
    """A new key with its secret: shown this once, never stored."""

    key: str = Field(description="the secret; store it now, it cannot be shown again")


def check_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes sorted, or :class:`InvalidInput` naming those no caller may hold."""
    unknown = sorted(set(scopes) - GRANTABLE_SCOPES)
    if unknown:
        raise InvalidInput(
            "unknown scopes", details={"unknown": unknown, "grantable": sorted(GRANTABLE_SCOPES)}
        )
    return sorted(set(scopes))


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(**{**dict(row), "scopes": list(row["scopes"])})


def _tenant(row: asyncpg.Record) -> Tenant:
    return Tenant(**{**dict(row), "quotas": json.loads(row["quotas"])})


class ApiKeyStore:
    """Tenants and keys; ``pepper`` is the HMAC key of the stored digests."""

    def __init__(self, pool: asyncpg.Pool, pepper: bytes) -> None:
        self._pool = pool
        self._pepper = pepper

    async def create_tenant(self, tenant_id: str, name: str) -> Tenant:
        """A new tenant; :class:`Conflict` when the id is taken."""
        async with unavailable_when_transient("key store", "create_tenant"):
            try:
                row = await self._pool.fetchrow(
                    "INSERT INTO gateway.tenants (id, name) VALUES ($1, $2)"  # noqa: S608 - constant
                    f" RETURNING {_TENANT_COLUMNS}",
                    tenant_id,
                    name,
                )
            except asyncpg.UniqueViolationError:
                raise Conflict("the tenant exists", details={"tenant": tenant_id}) from None
            except asyncpg.CheckViolationError:
                raise InvalidInput("not a valid tenant id or name") from None
        assert row is not None
        return _tenant(row)

    async def list_tenants(self) -> list[Tenant]:
        """Every tenant, oldest first."""
        async with unavailable_when_transient("key store", "list_tenants"):
            rows = await self._pool.fetch(
                f"SELECT {_TENANT_COLUMNS} FROM gateway.tenants"  # noqa: S608 - constant columns
                " ORDER BY created_at, id"
            )
        return [_tenant(row) for row in rows]

    async def find_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant of that id, disabled or not; None when there is none."""
        async with unavailable_when_transient("key store", "find_tenant"):
            row = await self._pool.fetchrow(
                f"SELECT {_TENANT_COLUMNS} FROM gateway.tenants WHERE id = $1",  # noqa: S608
                tenant_id,
            )
        return None if row is None else _tenant(row)

    async def set_tenant_disabled(self, tenant_id: str, *, disabled: bool) -> Tenant:
        """Disable a tenant (again is no error: the first time stays) or enable it;
        :class:`NotFound` when there is none."""
        async with unavailable_when_transient("key store", "set_tenant_disabled"):
            row = await self._pool.fetchrow(
                "UPDATE gateway.tenants SET disabled_at ="  # noqa: S608 - constant columns
                " CASE WHEN $2 THEN coalesce(disabled_at, now()) END"
                f" WHERE id = $1 RETURNING {_TENANT_COLUMNS}",
                tenant_id,
                disabled,
            )
        if row is None:
            raise NotFound("no such tenant", details={"tenant": tenant_id})
        return _tenant(row)

    async def create_key(
        self,
        *,
        name: str,
        tenant: str,
        scopes: Iterable[str],
        expires_at: datetime | None = None,
        development: bool = False,
    ) -> CreatedApiKey:
        """A new key; :class:`NotFound` when the tenant does not exist."""
        granted = check_scopes(scopes)
        secret = apikeys.new_key(development=development)
        async with unavailable_when_transient("key store", "create_key"):
            try:
                row = await self._pool.fetchrow(
                    _INSERT_KEY,
                    uuid.uuid4(),
                    apikeys.digest(self._pepper, secret),
                    apikeys.hint(secret),
                    name,
                    tenant,
                    granted,
                    development,
                    expires_at,
                )
            except asyncpg.ForeignKeyViolationError:
                raise NotFound("no such tenant", details={"tenant": tenant}) from None
            except asyncpg.CheckViolationError:
                raise InvalidInput("the name or expiry is not valid") from None
        assert row is not None
        return CreatedApiKey(**_key(row).model_dump(), key=secret)

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Every key (of ``tenant`` when given), oldest first; no secrets."""
        async with unavailable_when_transient("key store", "list_keys"):
            rows = await self._pool.fetch(
                f"SELECT {_KEY_COLUMNS} FROM gateway.api_keys"  # noqa: S608 - constant columns
                " WHERE $1::text IS NULL OR tenant = $1 ORDER BY created_at, id",
                tenant,
            )
        return [_key(row) for row in rows]

    async def revoke_key(self, key_id: uuid.UUID) -> ApiKey:
        """Revoke a key (again is no error: the first revocation time stays)."""
        async with unavailable_when_transient("key store", "revoke_key"):
            row = await self._pool.fetchrow(_REVOKE_KEY, key_id)
        if row is None:
            raise NotFound("no such API key", details={"id": str(key_id)})
        return _key(row)

    async def find(self, digest: bytes) -> tuple[ApiKey, bytes] | None:
        """The key stored under ``digest``, with the digest as stored; None also when
        its tenant is disabled (its keys are then as good as unknown)."""
        async with unavailable_when_transient("key store", "find_key"):
            row = await self._pool.fetchrow(
                f"SELECT {_KEY_COLUMNS}, digest FROM gateway.api_keys"  # noqa: S608 - constant
                " WHERE digest = $1 AND NOT EXISTS (SELECT 1 FROM gateway.tenants t"
                " WHERE t.id = api_keys.tenant AND t.disabled_at IS NOT NULL)",
                digest,
            )
        if row is None:
            return None
        return _key(row), bytes(row["digest"])

    async def touch(self, key_ids: Iterable[uuid.UUID], at: datetime) -> None:
        """Record that the keys were used at ``at`` (never moving backwards)."""
        await self._pool.execute(
            "UPDATE gateway.api_keys SET last_used_at = greatest(last_used_at, $2)"
            " WHERE id = ANY($1::uuid[])",
            list(key_ids),
            at,
        )

    async def active_development_keys(self) -> list[ApiKey]:
        """Development keys that are not revoked (refused by a production gateway)."""
        rows = await self._pool.fetch(
            f"SELECT {_KEY_COLUMNS} FROM gateway.api_keys"  # noqa: S608 - constant columns
            " WHERE development AND revoked_at IS NULL"
        )
        return [_key(row) for row in rows]
