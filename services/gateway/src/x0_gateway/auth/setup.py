"""Authentication's part of the gateway's start-up: migrations, checks, verifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import asyncpg

from x0_common.postgres import migrate
from x0_gateway.auth.authenticator import Authenticator
from x0_gateway.auth.key_verifier import ApiKeyVerifier
from x0_gateway.auth.oidc import JwtVerifier
from x0_gateway.auth.store import SCHEMA, ApiKeyStore
from x0_gateway.auth.tenants import TenantDirectory
from x0_gateway.settings import GatewaySettings

MIGRATIONS: Final = Path(__file__).resolve().parent.parent / "migrations"


class DevelopmentKeyInProduction(RuntimeError):
    """A production gateway found the development key in its database."""


async def open_key_store(settings: GatewaySettings, pool: asyncpg.Pool) -> ApiKeyStore:
    """The migrated key store; in production, refused while a development key is usable."""
    await migrate(pool, SCHEMA, MIGRATIONS)
    store = ApiKeyStore(pool, settings.pepper())
    if settings.common.environment != "development":
        found = await store.active_development_keys()
        if found:
            ids = ", ".join(str(key.id) for key in found)
            msg = (
                f"the database holds development API keys ({ids}): a production gateway "
                "does not start with them; revoke them (x0-gateway-admin revoke-key <id>)"
            )
            raise DevelopmentKeyInProduction(msg)
    return store


def authenticator_for(settings: GatewaySettings, store: ApiKeyStore) -> Authenticator:
    """API keys always; JWTs when a JWKS is configured."""
    api_keys = ApiKeyVerifier(
        store,
        settings.pepper(),
        cache_seconds=settings.api_key_cache_seconds,
        refuse_development_keys=settings.common.environment != "development",
    )
    tokens = None
    if settings.jwt.enabled:
        tenants = TenantDirectory(store, cache_seconds=settings.api_key_cache_seconds)
        tokens = JwtVerifier(settings.jwt, tenants)
    return Authenticator(api_keys, tokens)
