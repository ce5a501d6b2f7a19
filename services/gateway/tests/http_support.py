"""The HTTP client the gateway's unit tests call an app with."""

from __future__ import annotations

import httpx
from starlette.types import ASGIApp


def in_process_client(app: ASGIApp) -> httpx.AsyncClient:
    """A client calling ``app`` in process: no server, and no lifespan run."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway")
