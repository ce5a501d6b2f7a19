"""Redis: one client per service, configured the same way everywhere.

The client fails fast (2 s timeouts, no retries of its own): callers either turn a
failure into ``Unavailable``, which the responder retries with its own backoff and
deadline, or carry on without the cache. Two layers of retries would only stretch
a request past its deadline.
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from x0_common.settings import RedisSettings


def create_redis(settings: RedisSettings, *, decode_responses: bool = False) -> aioredis.Redis:
    """The service's Redis client (connections open lazily, on first use)."""
    client: aioredis.Redis = aioredis.from_url(
        settings.url.get_secret_value(),
        decode_responses=decode_responses,
        socket_connect_timeout=2,
        socket_timeout=2,
        retry=Retry(NoBackoff(), 0),
    )
    return client
