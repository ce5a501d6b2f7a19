"""Beacon nonces seen within the window, in Redis (:class:`~x0_crypto.domain.ports.NonceCache`).

One key per (tenant, node, nonce):
``x0:crypto:<tenant>:beacon-nonce:<node_id>:<sha256(nonce) hex>`` (the same node id in
two tenants is two nodes),
whose value is the id of the request that had the nonce accepted, expiring with the
beacon's window. Recording is one ``SET key owner NX PX ttl GET`` (Redis >= 7.0): it
sets the key only when absent and returns the previous owner otherwise, so of two
racing requests exactly one owns the nonce, and a redelivered request recognises its
own earlier record. Hashing the nonce bounds the key length whatever its size.

Redis is the fast store on purpose: losing it (a restart without persistence) forgets
at most one window of nonces, and the timestamp check rejects anything older.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from x0_common.errors import Unavailable
from x0_common.principal import DEFAULT_TENANT

if TYPE_CHECKING:
    from redis.asyncio import Redis

KEY_PREFIX = "x0:crypto"
# Connection loss, timeouts and a loading replica may pass: the responder retries them.
_TRANSIENT = (RedisConnectionError, RedisTimeoutError, OSError)


class RedisNonceCache:
    """Implements :class:`~x0_crypto.domain.ports.NonceCache` on one Redis client."""

    def __init__(
        self, redis: Redis, *, prefix: str = KEY_PREFIX, tenant: str = DEFAULT_TENANT
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:{tenant}:beacon-nonce"

    def key(self, node_id: str, nonce: bytes) -> str:
        """The Redis key of one node's nonce."""
        return f"{self._prefix}:{node_id}:{hashlib.sha256(nonce).hexdigest()}"

    async def seen(self, node_id: str, nonce: bytes, request_id: str) -> bool:
        """Whether another request has recorded this nonce."""
        try:
            owner = await self._redis.get(self.key(node_id, nonce))
        except _TRANSIENT as error:
            raise Unavailable("redis: nonce look-up failed", details={"store": "redis"}) from error
        return owner is not None and _text(owner) != request_id

    async def record(self, node_id: str, nonce: bytes, request_id: str, ttl_ms: int) -> bool:
        """Record the nonce unless another request owns it; whether this request does."""
        try:
            previous = await self._redis.set(
                self.key(node_id, nonce), request_id, nx=True, px=max(ttl_ms, 1), get=True
            )
        except _TRANSIENT as error:
            raise Unavailable("redis: nonce record failed", details={"store": "redis"}) from error
        return previous is None or _text(previous) == request_id


def _text(value: object) -> str:
    # The client may or may not decode responses; compare as text either way.
    return value.decode() if isinstance(value, bytes) else str(value)
