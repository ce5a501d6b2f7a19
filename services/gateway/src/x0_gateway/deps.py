"""FastAPI dependencies: the resources opened in the lifespan, as annotated aliases.

They are ``async`` on purpose: FastAPI runs plain functions in a worker thread, a
thread hop per request for a dictionary lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from x0_common.errors import Unavailable
from x0_common.kafka import Requester
from x0_gateway.auth.authenticator import Authenticator
from x0_gateway.auth.store import ApiKeyStore
from x0_gateway.settings import GatewaySettings


async def _requester(request: Request) -> Requester:
    requester: Requester = request.app.state.requester
    return requester


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


async def _key_store(request: Request) -> ApiKeyStore:
    store: ApiKeyStore | None = getattr(request.app.state, "key_store", None)
    if store is None:
        raise Unavailable("the gateway is starting")
    return store


async def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if authenticator is None:
        raise Unavailable("the gateway is starting")
    return authenticator


RequesterDep = Annotated[Requester, Depends(_requester)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
KeyStoreDep = Annotated[ApiKeyStore, Depends(_key_store)]
AuthenticatorDep = Annotated[Authenticator, Depends(_authenticator)]
