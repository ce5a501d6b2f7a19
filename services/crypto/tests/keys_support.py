"""Helpers for the managed-key tests: the real keystore on the test PostgreSQL, and the
real handlers called the way the responder calls them (payload validated into the
request model, result dumped to JSON)."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from pydantic import BaseModel

from x0_common.events.binary import encode
from x0_common.kafka import RequestContext
from x0_common.metrics import new_registry
from x0_common.principal import DEFAULT_TENANT
from x0_common.resources import Stores
from x0_common.testing.handlers import CapturingResponder
from x0_common.testing.principals import principal, request_context
from x0_crypto.adapters.keybackup import KeyBackups
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import Registry
from x0_crypto.handlers import keys
from x0_crypto.metrics import SERVICE, CryptoMetrics
from x0_crypto.settings import CryptoSettings

Handler = Callable[[Any, RequestContext], Awaitable[BaseModel | None]]

# The worker's own KEK (development default unless X0_CRYPTO_KEK is set), so that rows
# these tests leave behind stay readable by a locally running worker.
SETTINGS = CryptoSettings()
KEK = SETTINGS.key_encryption_key()


def context(correlation_id: str | None = None, tenant: str = DEFAULT_TENANT) -> RequestContext:
    """A request context as the responder builds it, for a caller of ``tenant``."""
    return request_context(principal(tenant), correlation_id=correlation_id)


class KeysUnderTest:
    """The keystore, backups and handlers on one pool, with their own metrics."""

    def __init__(
        self, pool: asyncpg.Pool, registry: Registry, *, max_keys: int | None = None
    ) -> None:
        self.metrics_registry = new_registry()
        self.metrics = CryptoMetrics(self.metrics_registry)
        self.store = KeyStore(pool, KEK, registry, self.metrics, max_keys=max_keys)
        self.backups = KeyBackups(self.store, KEK, registry)
        self.deps = CryptoDeps(
            settings=SETTINGS, algorithms=registry, metrics=self.metrics, stores=Stores.of(pool)
        )
        self.deps.keystore, self.deps.backups = self.store, self.backups
        self.responder = CapturingResponder()
        keys.register(self.responder, self.deps)  # type: ignore[arg-type]

    async def call(
        self,
        message_type: str,
        payload: dict[str, Any],
        *,
        correlation_id: str | None = None,
        tenant: str = DEFAULT_TENANT,
    ) -> dict[str, Any]:
        """Run the handler for ``message_type`` on a JSON-like payload, for a caller of
        ``tenant``; its JSON result."""
        model, handler = self.responder.handlers[message_type]
        result = await handler(model.model_validate(payload), context(correlation_id, tenant))
        assert result is not None
        return result.model_dump(mode="json")

    def sample(self, name: str, **labels: str) -> float:
        """A metric value (0 when never set)."""
        value = self.metrics_registry.get_sample_value(name, {"service": SERVICE, **labels})
        return value or 0.0


def b64(data: bytes) -> str:
    """base64url without padding, as the wire carries bytes."""
    return encode(data)


def unb64(text: str) -> bytes:
    """The bytes of base64url text, padded or not."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
