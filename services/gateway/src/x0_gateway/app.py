"""Wiring only: settings, tracing, the requester, the key store, the audit trail, routes
and error handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider

from x0_common.events import telemetry as telemetry_events
from x0_common.kafka import Requester
from x0_common.kafka.clients import ensure_topics
from x0_common.metrics import RequesterMetrics, new_registry
from x0_common.postgres import create_pool
from x0_gateway.audit.middleware import AuditMiddleware
from x0_gateway.audit.setup import audited_routes, close_audit, open_audit
from x0_gateway.audit.writer import AuditMetrics
from x0_gateway.auth.setup import authenticator_for, open_key_store
from x0_gateway.body_limit import BodyLimitMiddleware
from x0_gateway.http_metrics import HttpMetrics, HttpMetricsMiddleware
from x0_gateway.limits.install import close_limits, install_limits, open_limits
from x0_gateway.openapi import install_openapi
from x0_gateway.problems import install_problem_handlers
from x0_gateway.routes import admin, audit, health, operations_router
from x0_gateway.settings import GatewaySettings

SERVICE = "gateway"
logger = logging.getLogger(__name__)


def create_app(settings: GatewaySettings, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """Build the gateway; Kafka clients start in the lifespan."""
    registry = new_registry()
    requester = Requester(
        settings.common.kafka,
        reply_topic=settings.reply_topic,
        metrics=RequesterMetrics(registry, SERVICE),
        max_in_flight=settings.max_in_flight,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        open_limits(app, settings)
        pool = await create_pool(settings.common.postgres)
        touches: asyncio.Task[None] | None = None
        try:
            store = await open_key_store(settings, pool)
            authenticator = authenticator_for(settings, store)
            app.state.pool, app.state.key_store = pool, store
            app.state.authenticator = authenticator
            touches = asyncio.create_task(authenticator.api_keys.run_touches())
            await requester.start()
            await _ensure_published_topics(settings)
            await open_audit(app, settings, pool)
            yield
        finally:
            await close_audit(app)
            await requester.stop()
            if touches is not None:
                touches.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await touches
            app.state.authenticator = app.state.key_store = app.state.pool = None
            await pool.close()
            await close_limits(app)

    app = FastAPI(
        title="x0tta6bl4 gateway",
        version="0.1.0",
        summary="Post-quantum key exchange, retrieval and mesh telemetry services over Kafka.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.requester = requester
    app.state.audit = app.state.audit_log = None  # opened in the lifespan
    app.state.audit_key = settings.audit.key()
    app.state.audit_metrics = AuditMetrics(registry, SERVICE)
    install_problem_handlers(app)
    install_openapi(app)
    app.include_router(health.router)
    app.include_router(operations_router())
    app.include_router(admin.router)
    app.include_router(audit.router)
    # Our own rather than FastAPI's max_body_size, whose 413 is text/plain, not a problem.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # Concurrency limit, CORS (when configured), security headers: inside the metrics.
    install_limits(app, settings, registry)
    # Outcome records of audited and refused requests (after the answer is sent);
    # outside the limits, so that their refusals (413, 503 overloaded) are recorded.
    app.add_middleware(
        AuditMiddleware,
        routes=audited_routes(),
        max_pending_refusals=settings.connections.max_concurrent_requests,
    )
    app.add_middleware(HttpMetricsMiddleware, metrics=HttpMetrics(registry, SERVICE))
    # The one tracing layer of the gateway; the requester adds the Kafka producer span.
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        excluded_urls="/health/.*,/metrics",
        # One server span per request; per-chunk receive/send spans only cost time.
        exclude_spans=["receive", "send"],
    )
    return app


async def _ensure_published_topics(settings: GatewaySettings) -> None:
    # The broker may auto-create a topic on first publish, with one partition for good;
    # the events topic's partitions bound how many telemetry workers share it.
    try:
        await ensure_topics(
            settings.common.kafka,
            [telemetry_events.EVENTS_TOPIC],
            partitions=telemetry_events.EVENTS_PARTITIONS,
        )
    except Exception:  # noqa: BLE001 - the worker creates it too; readiness tracks Kafka
        logger.warning("could not create %s at start-up", telemetry_events.EVENTS_TOPIC)
