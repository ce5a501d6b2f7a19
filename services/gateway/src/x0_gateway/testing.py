"""Helpers for tests (and benchmarks) of the gateway and of what calls it.

- :func:`provision_key`: a real API key in a real database, as ``x0-gateway-admin``
  makes one, for tests and benchmarks that call a gateway end to end.
- :func:`authenticate_as`: for unit tests of routes, where the caller is not the
  subject: every request is taken to come from ``principal``.
- :func:`audit_through`: for unit tests whose lifespan does not run: audit records go
  through a stand-in requester (audited routes refuse with 503 without a writer).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import asyncpg
from fastapi import FastAPI, Request

from x0_common.postgres import migrate
from x0_common.principal import DEFAULT_TENANT, GRANTABLE_SCOPES, Principal
from x0_common.settings import PostgresSettings
from x0_gateway.audit.writer import AuditWriter
from x0_gateway.auth.caller import Caller
from x0_gateway.auth.guard import authenticate
from x0_gateway.auth.setup import MIGRATIONS
from x0_gateway.auth.store import SCHEMA, ApiKeyStore, CreatedApiKey

# Every scope a caller may hold, in the default tenant.
ADMIN = Principal(tenant=DEFAULT_TENANT, subject="test:admin", scopes=GRANTABLE_SCOPES)  # type: ignore[arg-type]


async def provision_key(
    postgres: PostgresSettings | str,
    pepper: bytes,
    *,
    tenant: str = DEFAULT_TENANT,
    scopes: Iterable[str] = GRANTABLE_SCOPES,
    name: str = "test key",
    expires_at: datetime | None = None,
) -> CreatedApiKey:
    """A new key (its ``key`` is the secret), its tenant created when missing, in the
    gateway schema of ``postgres`` (migrated first)."""
    dsn = postgres if isinstance(postgres, str) else postgres.dsn.get_secret_value()
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    assert pool is not None
    try:
        await migrate(pool, SCHEMA, MIGRATIONS)
        await pool.execute(
            "INSERT INTO gateway.tenants (id, name) VALUES ($1, $1) ON CONFLICT DO NOTHING",
            tenant,
        )
        store = ApiKeyStore(pool, pepper)
        return await store.create_key(
            name=name, tenant=tenant, scopes=scopes, expires_at=expires_at
        )
    finally:
        await pool.close()


def authenticate_as(app: FastAPI, principal: Principal = ADMIN) -> None:
    """Take every request to ``app`` as coming from ``principal`` (no key, no database).

    The scope checks still run: a principal without a route's scope gets 403.
    """

    async def fixed(request: Request) -> Caller:
        request.state.principal = principal
        request.state.credential_id = f"test:{principal.subject}"
        return Caller(principal, f"test:{principal.subject}")

    app.dependency_overrides[authenticate] = fixed


def audit_through(app: FastAPI, requester: Any) -> None:
    """Publish ``app``'s audit records with ``requester`` (e.g. one that records what it
    is given), as the lifespan does with the real requester."""
    app.state.audit = AuditWriter(requester, app.state.settings.audit, app.state.audit_metrics)
