"""A stand-in for authentication, for tests of what runs after it (limits, checks).

The gateway's ``authenticate`` dependency is replaced by one that trusts two test
headers, ``x-test-tenant`` and ``x-test-credential``, and grants every scope: it sets
``request.state.principal`` and ``request.state.credential_id`` as the real one does.
"""

from __future__ import annotations

from fastapi import FastAPI, Request

from x0_common.principal import GRANTABLE_SCOPES, Principal
from x0_gateway.auth.caller import Caller
from x0_gateway.auth.guard import authenticate


async def stand_in_authenticate(request: Request) -> Caller:
    """Every scope, for the tenant and credential the test headers name."""
    tenant = request.headers.get("x-test-tenant", "default")
    credential = request.headers.get("x-test-credential", "key-1")
    principal = Principal(tenant=tenant, subject=credential, scopes=frozenset(GRANTABLE_SCOPES))  # type: ignore[arg-type]
    request.state.principal = principal
    request.state.credential_id = credential
    return Caller(principal=principal, credential_id=credential)


def authenticate_by_test_headers(app: FastAPI) -> FastAPI:
    """``app`` with the stand-in in place of the real authentication."""
    app.dependency_overrides[authenticate] = stand_in_authenticate
    return app


def caller(tenant: str, credential: str = "key-1") -> dict[str, str]:
    """The headers of a test caller."""
    return {"x-test-tenant": tenant, "x-test-credential": credential}
