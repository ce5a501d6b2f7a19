"""What the sync and async clients share: settings resolved once, and default headers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

import httpx

from x0_client.retry import RetryPolicy
from x0_client.settings import ClientSettings

try:
    __version__ = version("x0-client")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

USER_AGENT = f"x0-client/{__version__} httpx/{httpx.__version__}"


@dataclass(frozen=True, slots=True)
class Config:
    """A client's resolved configuration."""

    url: str
    headers: dict[str, str]
    timeout: httpx.Timeout
    retry: RetryPolicy


def resolve(
    *,
    url: str | None,
    api_key: str | None,
    timeout: float | httpx.Timeout | None,
    retry: RetryPolicy | None,
    headers: Mapping[str, str] | None,
    settings: ClientSettings | None,
) -> Config:
    """Arguments first, then ``settings`` (``X0_*`` variables when not given), then defaults."""
    settings = settings or ClientSettings()
    key = (
        api_key
        if api_key is not None
        else (settings.api_key.get_secret_value() if settings.api_key else None)
    )
    sent = {"User-Agent": USER_AGENT, "Accept": "application/json, application/problem+json"}
    if key:
        sent["Authorization"] = f"Bearer {key}"
    sent.update(headers or {})
    if timeout is None:
        resolved_timeout = settings.timeout()
    elif isinstance(timeout, httpx.Timeout):
        resolved_timeout = timeout
    else:
        resolved_timeout = httpx.Timeout(timeout, connect=min(timeout, settings.connect_timeout))
    return Config(
        url=(url or settings.url).rstrip("/"),
        headers=sent,
        timeout=resolved_timeout,
        retry=retry or RetryPolicy(max_attempts=settings.max_attempts),
    )
