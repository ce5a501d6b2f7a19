"""Wiring of the limits into the app: state, Redis client, middlewares."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from starlette.middleware.cors import CORSMiddleware

from x0_common.redis_client import create_redis
from x0_gateway.hardening import SecurityHeadersMiddleware
from x0_gateway.limits.concurrency import ConcurrencyLimitMiddleware
from x0_gateway.limits.idempotency import IdempotencyStore
from x0_gateway.limits.metrics import LimitMetrics
from x0_gateway.limits.ratelimit import RateLimiter
from x0_gateway.settings import GatewaySettings

# What a browser may send and read when CORS is on.
_CORS_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "traceparent"]
_CORS_EXPOSED = ["RateLimit", "RateLimit-Policy", "Retry-After", "Idempotent-Replayed"]


def install_limits(app: FastAPI, settings: GatewaySettings, registry: CollectorRegistry) -> None:
    """Add the limits' middlewares; the rate limiter and the idempotency store are
    opened in the lifespan (:func:`open_limits`), and are off until then.

    Call before the outer middlewares (metrics, tracing) are added: what is added here
    sits inside them, so refusals are counted and traced too."""
    app.state.limit_metrics = LimitMetrics(registry, "gateway")
    app.state.limits_redis = app.state.rate_limiter = app.state.idempotency = None
    app.add_middleware(
        ConcurrencyLimitMiddleware,
        max_requests=settings.connections.max_concurrent_requests,
        metrics=app.state.limit_metrics,
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=_CORS_HEADERS,
            expose_headers=_CORS_EXPOSED,
            max_age=600,
        )
    app.add_middleware(SecurityHeadersMiddleware)


def open_limits(app: FastAPI, settings: GatewaySettings) -> None:
    """Open the limits' Redis client (it connects on first use), the rate limiter and
    the idempotency store; :func:`close_limits` closes them."""
    redis = create_redis(settings.common.redis)
    metrics: LimitMetrics = app.state.limit_metrics
    app.state.limits_redis = redis
    app.state.rate_limiter = (
        RateLimiter(redis, settings.rate_limits, metrics) if settings.rate_limits.enabled else None
    )
    app.state.idempotency = IdempotencyStore(
        redis,
        ttl_seconds=settings.idempotency_ttl_seconds,
        # A claim outlives the slowest request (an ingest that waits: two timeouts).
        pending_seconds=2 * settings.request_timeout_seconds + 30,
    )


async def close_limits(app: FastAPI) -> None:
    """Close the limits' Redis connections (end of the lifespan)."""
    redis = app.state.limits_redis
    app.state.limits_redis = app.state.rate_limiter = app.state.idempotency = None
    if redis is not None:
        await redis.aclose()
