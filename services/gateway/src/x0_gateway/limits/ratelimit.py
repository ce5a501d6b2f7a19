"""Rate limits per credential and per tenant, checked after authentication.

One Redis round trip decides both limits (:mod:`x0_gateway.limits.gcra`). When Redis
does not answer within ``redis_timeout_seconds`` the replica limits in process for
``fallback_seconds`` (fail open, each replica applying the full quotas), except for
the classes in ``fail_closed``, which answer 503 meanwhile; ``docs/security.md``
says why. Every limited response carries the IETF RateLimit header fields
(draft-ietf-httpapi-ratelimit-headers):

    RateLimit-Policy: "crypto-credential";q=6000;w=60, "crypto-tenant";q=30000;w=60
    RateLimit: "crypto-credential";r=5999;t=1, "crypto-tenant";r=29999;t=1

and a refusal is 429 problem+json with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import get_args

import redis.asyncio as aioredis
from fastapi import Request
from redis.exceptions import RedisError

from x0_common.contract import Operation
from x0_common.errors import RateLimited, Unavailable
from x0_gateway.hardening import add_response_headers
from x0_gateway.limits.gcra import SCRIPT, Decision, Limit, LocalGcra
from x0_gateway.limits.metrics import LimitMetrics
from x0_gateway.limits.policy import RateClass, RateLimitSettings, rate_class

logger = logging.getLogger(__name__)

# Callers without a principal (no authentication configured) are limited by address.
ANONYMOUS_TENANT = "anonymous"


def caller_of(request: Request) -> tuple[str, str]:
    """``(tenant, credential id)`` of the authenticated caller, or of its address."""
    principal = getattr(request.state, "principal", None)
    if principal is None:
        host = request.client.host if request.client else "unknown"
        return ANONYMOUS_TENANT, f"ip:{host}"
    credential = getattr(request.state, "credential_id", None) or f"sub:{principal.subject}"
    return principal.tenant, credential


def keys_for(rate: RateClass, tenant: str, credential: str) -> tuple[str, str]:
    """The credential's and the tenant's key; ``{tenant}`` puts both in one cluster slot.

    The credential id is hashed: token subjects are long and not Redis's to read."""
    digest = hashlib.blake2b(credential.encode(), digest_size=12).hexdigest()
    return f"x0:rl:{{{tenant}}}:{rate}:c:{digest}", f"x0:rl:{{{tenant}}}:{rate}:t"


class RateLimiter:
    """Decides, per request, whether a credential and its tenant are within quota."""

    def __init__(
        self, redis: aioredis.Redis, settings: RateLimitSettings, metrics: LimitMetrics
    ) -> None:
        self.settings = settings
        self._script = redis.register_script(SCRIPT)
        self._local = LocalGcra()
        self._metrics = metrics
        self._redis_down_until = 0.0
        self._limits = {rate: _limits(settings, rate) for rate in get_args(RateClass)}
        self._fields = {rate: _HeaderFields(rate, limits) for rate, limits in self._limits.items()}

    async def decide(self, rate: RateClass, tenant: str, credential: str) -> Decision:
        """Charge one request to the caller and its tenant, if both are within quota."""
        keys = keys_for(rate, tenant, credential)
        limits = self._limits[rate]
        if time.monotonic() >= self._redis_down_until:
            try:
                async with asyncio.timeout(self.settings.redis_timeout_seconds):
                    reply = await self._script(
                        keys=list(keys),
                        args=[
                            limits[0].interval_ms,
                            limits[0].window_ms,
                            limits[1].interval_ms,
                            limits[1].window_ms,
                        ],
                    )
                return self._count(rate, Decision.of_script(reply), "redis")
            except (RedisError, OSError, TimeoutError) as error:
                self._redis_down_until = time.monotonic() + self.settings.fallback_seconds
                logger.warning(
                    "rate limits: Redis unreachable (%s); limiting in process for %.0f s",
                    type(error).__name__,
                    self.settings.fallback_seconds,
                )
        if rate in self.settings.fail_closed:
            self._metrics.rate_limit.labels(self._metrics.service, rate, "refused", "none").inc()
            raise Unavailable(
                "rate limits cannot be checked right now",
                details={"retry_after_seconds": math.ceil(self.settings.fallback_seconds)},
            )
        return self._count(rate, self._local.decide(keys, limits), "local")

    def header_fields(self, rate: RateClass, decision: Decision) -> list[tuple[bytes, bytes]]:
        """``RateLimit-Policy`` and ``RateLimit`` for a decision."""
        return self._fields[rate].of(decision)

    def _count(self, rate: RateClass, decision: Decision, source: str) -> Decision:
        outcome = "allowed" if decision.allowed else "limited"
        self._metrics.rate_limit.labels(self._metrics.service, rate, outcome, source).inc()
        return decision


def _limits(settings: RateLimitSettings, rate: RateClass) -> tuple[Limit, Limit]:
    policy = settings.policy(rate)
    return (
        Limit(policy.per_credential, policy.window_seconds),
        Limit(policy.per_tenant, policy.window_seconds),
    )


class _HeaderFields:
    """The fixed RateLimit-Policy value of a class and its RateLimit values."""

    def __init__(self, rate: RateClass, limits: tuple[Limit, Limit]) -> None:
        self.names = (f"{rate}-credential", f"{rate}-tenant")
        self.policy = ", ".join(
            f'"{name}";q={limit.quota};w={limit.window_seconds}'
            for name, limit in zip(self.names, limits, strict=True)
        ).encode()

    def of(self, decision: Decision) -> list[tuple[bytes, bytes]]:
        current = (
            f'"{self.names[0]}";r={decision.credential_remaining};'
            f"t={math.ceil(decision.credential_reset_ms / 1000)}, "
            f'"{self.names[1]}";r={decision.tenant_remaining};'
            f"t={math.ceil(decision.tenant_reset_ms / 1000)}"
        )
        return [(b"ratelimit-policy", self.policy), (b"ratelimit", current.encode())]


def rate_limit(operation: Operation) -> Callable[[Request], Awaitable[None]]:
    """The route dependency that charges the row's rate class (after authentication)."""
    return rate_limit_class(rate_class(operation))


def rate_limit_class(rate: RateClass) -> Callable[[Request], Awaitable[None]]:
    """The same for a route that is not a contract row (e.g. ``admin``'s own routes)."""

    async def limit_rate(request: Request) -> None:
        limiter: RateLimiter | None = request.app.state.rate_limiter
        if limiter is None:
            return
        tenant, credential = caller_of(request)
        decision = await limiter.decide(rate, tenant, credential)
        add_response_headers(request, limiter.header_fields(rate, decision))
        if not decision.allowed:
            which = "credential" if decision.credential_remaining == 0 else "tenant"
            raise RateLimited(
                f"too many {rate} requests for this {which}",
                details={
                    "retry_after_seconds": max(1, math.ceil(decision.retry_after_ms / 1000)),
                    "rate_class": rate,
                    "limit": which,
                },
            )

    return limit_rate
