"""Redis: one client per service, configured the same way everywhere.

The client fails fast (2 s timeouts, no retries of its own): callers either turn a
failure into ``Unavailable``, which the responder retries with its own backoff and
deadline, or carry on without the cache. Two layers of retries would only stretch
a request past its deadline.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider

from x0_common.settings import RedisSettings, read_password


class FileCredentialProvider(CredentialProvider):
    """The ACL user of the URL with the password in a file, read on every new
    connection (a rotated secret needs no restart)."""

    def __init__(self, username: str, file: Path) -> None:
        self.username = username
        self.file = file

    def get_credentials(self) -> tuple[str, str]:
        """(username, password) for ``AUTH``."""
        return self.username, read_password(self.file)

    async def get_credentials_async(self) -> tuple[str, str]:
        """The same, for the asyncio client."""
        return self.get_credentials()


def create_redis(settings: RedisSettings, *, decode_responses: bool = False) -> aioredis.Redis:
    """The service's Redis client (connections open lazily, on first use)."""
    url = settings.url.get_secret_value()
    credentials: dict[str, Any] = {}
    if settings.password_file is not None:
        # The provider and a user or password in the URL cannot be given together.
        parts = urllib.parse.urlsplit(url)
        username = urllib.parse.unquote(parts.username or "default")
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        credentials["credential_provider"] = FileCredentialProvider(
            username, settings.password_file
        )
    client: aioredis.Redis = aioredis.from_url(
        url,
        decode_responses=decode_responses,
        socket_connect_timeout=2,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 0),
        **credentials,
    )
    return client
