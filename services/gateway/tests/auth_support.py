"""An in-memory stand-in for the key store, for unit tests of verification.

PostgreSQL is not the subject of these tests (it is in test_auth_postgres.py): this
records the lookups and writes the verifier makes, so caching can be asserted.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from x0_gateway.auth import apikeys
from x0_gateway.auth.store import ApiKey, Tenant

PEPPER = bytes(range(32))


class MemoryKeyStore:
    """``find``, ``find_tenant`` and ``touch`` as ApiKeyStore has them, over dicts."""

    def __init__(self, tenants: Iterable[str] = ("default", "acme", "lab")) -> None:
        self.keys: dict[bytes, ApiKey] = {}
        self.tenants = {
            tenant: Tenant(id=tenant, name=tenant, created_at=datetime.now(UTC))
            for tenant in tenants
        }
        self.finds = 0
        self.tenant_finds = 0
        self.touched: list[set[uuid.UUID]] = []

    def disable(self, tenant: str) -> None:
        self.tenants[tenant] = self.tenants[tenant].model_copy(
            update={"disabled_at": datetime.now(UTC)}
        )

    async def find_tenant(self, tenant: str) -> Tenant | None:
        self.tenant_finds += 1
        return self.tenants.get(tenant)

    def add(
        self,
        *,
        scopes: Iterable[str] = ("crypto",),
        tenant: str = "default",
        development: bool = False,
        expires_at: datetime | None = None,
    ) -> tuple[str, ApiKey]:
        secret = apikeys.new_key(development=development)
        key = ApiKey(
            id=uuid.uuid4(),
            hint=apikeys.hint(secret),
            name="unit",
            tenant=tenant,
            scopes=sorted(scopes),
            development=development,
            created_at=datetime.now(UTC),
            last_used_at=None,
            expires_at=expires_at,
            revoked_at=None,
        )
        self.keys[apikeys.digest(PEPPER, secret)] = key
        return secret, key

    def revoke(self, key_id: uuid.UUID) -> None:
        for digest, key in self.keys.items():
            if key.id == key_id:
                self.keys[digest] = key.model_copy(update={"revoked_at": datetime.now(UTC)})

    async def find(self, digest: bytes) -> tuple[ApiKey, bytes] | None:
        self.finds += 1
        key = self.keys.get(digest)
        return None if key is None else (key, digest)

    async def touch(self, key_ids: Iterable[uuid.UUID], at: datetime) -> None:
        assert at.tzinfo is not None
        self.touched.append(set(key_ids))
