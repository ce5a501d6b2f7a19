"""What handlers need, opened in the worker's start-up and handed to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

from x0_crypto.domain import Registry
from x0_crypto.metrics import CryptoMetrics
from x0_crypto.settings import CryptoSettings

if TYPE_CHECKING:
    import asyncpg
    from redis.asyncio import Redis


@dataclass
class CryptoDeps:
    """Resources shared by every handler; ``pool`` and ``redis`` exist once started."""

    settings: CryptoSettings
    algorithms: Registry
    metrics: CryptoMetrics
    resources: dict[str, object] = field(default_factory=dict)

    @property
    def pool(self) -> asyncpg.Pool:
        """The PostgreSQL pool (schema ``crypto``)."""
        return cast("asyncpg.Pool", self.resources["pool"])

    @property
    def redis(self) -> Redis:
        """The Redis client."""
        return cast("Redis", self.resources["redis"])
