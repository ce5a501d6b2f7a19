"""FastAPI dependencies: the resources opened in the lifespan, as annotated aliases.

They are ``async`` on purpose: FastAPI runs plain functions in a worker thread, a
thread hop per request for a dictionary lookup.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from x0_common.kafka import Requester
from x0_gateway.settings import GatewaySettings


async def _requester(request: Request) -> Requester:
    requester: Requester = request.app.state.requester
    return requester


async def _settings(request: Request) -> GatewaySettings:
    settings: GatewaySettings = request.app.state.settings
    return settings


RequesterDep = Annotated[Requester, Depends(_requester)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
