"""The settings and the HTTP client of the gateway's unit tests (an app in process)."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.types import ASGIApp

from x0_common.settings import CommonSettings, KafkaSettings
from x0_gateway.settings import GatewaySettings


def in_process_client(app: ASGIApp) -> httpx.AsyncClient:
    """A client calling ``app`` in process: no server, and no lifespan run."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")


def unit_settings(**overrides: Any) -> GatewaySettings:
    """Settings of a gateway whose lifespan never runs: an unroutable broker, so nothing
    here may reach Kafka."""
    return GatewaySettings(
        common=CommonSettings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1")),
        replica_id="unit",
        **overrides,
    )
