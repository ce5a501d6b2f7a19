"""``/v1/admin``: tenants and API keys, for callers with the ``admin`` scope.

``admin`` is the operator's scope and spans every tenant. A key's secret is in the
answer to its creation only (``Cache-Control: no-store``); listings never hold it.
The first key, when none exists yet, comes from ``x0-gateway-admin`` (straight to
PostgreSQL), or from ``make up`` in development. Every route is audited: the writes
record their attempt before they change anything, and are refused (503) when the
record cannot be written (:mod:`x0_gateway.audit`).
"""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import BaseModel, Field, field_validator

from x0_common.contract import Scope
from x0_common.errors import (
    Forbidden,
    InvalidInput,
    NotFound,
    RateLimited,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from x0_common.events.audit import ResourceType
from x0_common.principal import DEFAULT_TENANT, GRANTABLE_SCOPES, TenantId
from x0_gateway.audit.trail import attempt, named
from x0_gateway.auth.guard import authorise
from x0_gateway.auth.store import ApiKey, CreatedApiKey, Tenant
from x0_gateway.deps import AuthenticatorDep, KeyStoreDep
from x0_gateway.limits.ratelimit import rate_limit_class

_MAX_LIFETIME = timedelta(days=3650)


def _documented(*errors: type[Exception]) -> dict[int | str, dict[str, Any]]:
    return {
        getattr(error, "http_status", 500): {
            "description": (error.__doc__ or "").strip().splitlines()[0]
        }
        for error in (Unauthenticated, Forbidden, ValidationFailed, RateLimited, *errors)
    }


router = APIRouter(
    prefix="/v1/admin",
    tags=["admin"],
    # The admin rate class, per credential and tenant, after authentication.
    dependencies=[Depends(authorise("admin")), Depends(rate_limit_class("admin"))],
    responses=_documented(),
)
_ADMIN: dict[str, Any] = {"x-x0-scope": "admin"}
# Every admin operation is audited, with the type of resource it names.
AUDITED: dict[str, ResourceType | None] = {
    "admin_create_tenant": "tenant",
    "admin_list_tenants": None,
    "admin_create_key": "api_key",
    "admin_list_keys": None,
    "admin_revoke_key": "api_key",
}


class TenantCreate(BaseModel):
    """A new tenant."""

    id: TenantId
    name: str = Field(min_length=1, max_length=200)


class KeyCreate(BaseModel):
    """A new API key for a tenant."""

    name: str = Field(min_length=1, max_length=200, examples=["ci deploy"])
    tenant: TenantId = DEFAULT_TENANT
    scopes: list[Scope] = Field(min_length=1, examples=[["crypto", "keys:read"]])
    expires_in_seconds: int | None = Field(
        default=None, ge=60, le=int(_MAX_LIFETIME.total_seconds()), description="none: no expiry"
    )

    @field_validator("scopes")
    @classmethod
    def _grantable(cls, scopes: list[Scope]) -> list[Scope]:
        refused = sorted(set(scopes) - GRANTABLE_SCOPES)
        if refused:
            msg = f"no caller may hold {refused}"
            raise ValueError(msg)
        return scopes


KeyIdPath = Annotated[uuid.UUID, Path(description="the key's id (not its secret)")]


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    summary="Create a tenant",
    operation_id="admin_create_tenant",
    responses=_documented(InvalidInput, Unavailable) | {409: {"description": "the tenant exists"}},
    openapi_extra=_ADMIN,
)
async def create_tenant(body: TenantCreate, store: KeyStoreDep, request: Request) -> Tenant:
    """A tenant owns managed keys, collections and meshes; ids are lower-case."""
    await attempt(request, "tenant", body.id)
    return await store.create_tenant(body.id, body.name)


@router.get(
    "/tenants", summary="List tenants", operation_id="admin_list_tenants", openapi_extra=_ADMIN
)
async def list_tenants(store: KeyStoreDep) -> list[Tenant]:
    """Every tenant, oldest first."""
    return await store.list_tenants()


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key (its secret is shown once)",
    operation_id="admin_create_key",
    responses=_documented(InvalidInput, NotFound, Unavailable),
    openapi_extra=_ADMIN,
)
async def create_key(
    body: KeyCreate, store: KeyStoreDep, response: Response, request: Request
) -> CreatedApiKey:
    """The answer holds the key's secret, `key`: it is stored only as a digest and
    cannot be shown again."""
    # The attempt names the tenant; the outcome record, the new key's id.
    await attempt(request, "tenant", body.tenant)
    expires_at = None
    if body.expires_in_seconds is not None:
        expires_at = datetime.now(UTC) + timedelta(seconds=body.expires_in_seconds)
    created = await store.create_key(
        name=body.name, tenant=body.tenant, scopes=body.scopes, expires_at=expires_at
    )
    response.headers["Cache-Control"] = "no-store"
    named(request, "api_key", str(created.id))
    return created


@router.get(
    "/keys",
    summary="List API keys (never their secrets)",
    operation_id="admin_list_keys",
    openapi_extra=_ADMIN,
)
async def list_keys(
    store: KeyStoreDep, tenant: Annotated[TenantId | None, Query()] = None
) -> list[ApiKey]:
    """Every key, or a tenant's, oldest first, with when each was last used."""
    return await store.list_keys(tenant)


@router.delete(
    "/keys/{key_id}",
    summary="Revoke an API key",
    operation_id="admin_revoke_key",
    responses=_documented(NotFound, Unavailable),
    openapi_extra=_ADMIN,
)
async def revoke_key(
    key_id: KeyIdPath, store: KeyStoreDep, authenticator: AuthenticatorDep, request: Request
) -> ApiKey:
    """Refused at once by this replica, by every replica within
    `X0_GATEWAY_API_KEY_CACHE_SECONDS` (at most 5 s). Revoking again is no error."""
    await attempt(request, "api_key", str(key_id))
    revoked = await store.revoke_key(key_id)
    authenticator.api_keys.forget(key_id)
    return revoked
