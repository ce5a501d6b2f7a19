"""Where the gateway is and how to talk to it, from arguments or ``X0_*`` variables.

=====================  ==========================  ==============================
variable               setting                     default
=====================  ==========================  ==============================
``X0_URL``             ``url``                     ``http://127.0.0.1:8000``
``X0_API_KEY``         ``api_key``                 none (sent as ``Bearer``)
``X0_TIMEOUT_SECONDS`` ``timeout_seconds``         30 (read, write and pool)
``X0_CONNECT_TIMEOUT`` ``connect_timeout``         5
``X0_MAX_ATTEMPTS``    ``max_attempts``            3 (sends per call, retries included)
=====================  ==========================  ==============================
"""

from __future__ import annotations

import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_URL = "http://127.0.0.1:8000"


class ClientSettings(BaseSettings):
    """The client's settings; explicit constructor arguments override them."""

    model_config = SettingsConfigDict(env_prefix="X0_", env_ignore_empty=True, extra="ignore")

    url: str = DEFAULT_URL
    api_key: SecretStr | None = None
    # Above the gateway's own request timeout (10 s by default), so that its 504 arrives.
    timeout_seconds: float = Field(default=30.0, gt=0)
    connect_timeout: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)

    def timeout(self) -> httpx.Timeout:
        """The httpx timeout these settings describe."""
        return httpx.Timeout(self.timeout_seconds, connect=self.connect_timeout)
