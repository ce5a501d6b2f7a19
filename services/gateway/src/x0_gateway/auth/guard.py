"""The FastAPI dependencies that authenticate and authorise a request.

Every route built from the contract (``x0_gateway.routing.add_route``) and every
admin route depends on :func:`authorise` with its scope. It authenticates the caller
(401 otherwise), sets ``request.state.principal`` and ``request.state.credential_id``
for what runs later (rate limits, audit, the endpoint), then checks the scope (403).
Endpoints take the principal as :data:`PrincipalDep` to put it on their messages.
FastAPI resolves dependencies before it validates the body, so a caller without
credentials learns nothing about a route's input.
(No ``from __future__ import annotations``: FastAPI must see real annotations.)
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from x0_common.contract import Scope
from x0_common.errors import Unauthenticated
from x0_common.principal import Principal
from x0_gateway.auth.caller import Caller
from x0_gateway.deps import AuthenticatorDep

# Declares the scheme in the OpenAPI document; the header itself is parsed by the
# Authenticator, which tells a missing credential from a malformed one.
BEARER = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    bearerFormat="API key (x0_live_...) or JWT",
    description="An API key from `x0-gateway-admin create-key` or POST /v1/admin/keys, "
    "or a JWT from the configured identity provider. Each operation names the scope "
    "it needs (`x-x0-scope`).",
)


async def authenticate(
    request: Request,
    authenticator: AuthenticatorDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> Caller:
    """The request's caller, also set as ``request.state.principal``/``credential_id``."""
    caller = await authenticator.authenticate(request.headers.get("authorization"))
    request.state.principal = caller.principal
    request.state.credential_id = caller.credential_id
    return caller


def authorise(scope: Scope) -> Callable[[Caller], Awaitable[Principal]]:
    """The dependency of a route that needs ``scope``: 401, then 403, as problems."""

    # Security(..., scopes): the OpenAPI requirement lists the scope, {"bearer": [scope]}.
    async def require_scope(
        caller: Annotated[Caller, Security(authenticate, scopes=[scope])],
    ) -> Principal:
        caller.principal.require(scope)
        return caller.principal

    require_scope.__name__ = f"require_{scope.replace(':', '_')}"
    return require_scope


async def _principal(request: Request) -> Principal:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        # A route that skipped authorise(): refuse rather than forward anonymously.
        raise Unauthenticated("the route did not authenticate its caller")
    return principal


PrincipalDep = Annotated[Principal, Depends(_principal)]
