"""Liveness and readiness, open to anyone (probes carry no credentials).

Prometheus metrics are not here: they are served on a port of their own
(``X0_GATEWAY_METRICS_PORT``, see :mod:`x0_gateway.metrics_server`), never on the API's.
"""

from __future__ import annotations

import asyncio

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from x0_gateway.deps import RequesterDep

router = APIRouter(tags=["operations"])
_POSTGRES_TIMEOUT_SECONDS = 2.0


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    """Always 200 while the event loop answers."""
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Kafka and PostgreSQL answer and the reply consumer is assigned",
    responses={503: {"description": "not ready"}},
)
async def ready(request: Request, requester: RequesterDep) -> JSONResponse:
    """200 only when requests can be sent, their replies received and callers checked."""
    checks = {
        "reply_consumer_assigned": requester.ready,
        "kafka": await requester.kafka_reachable(),
        "postgres": await _postgres_answers(getattr(request.app.state, "pool", None)),
    }
    status = 200 if all(checks.values()) else 503
    return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)


async def _postgres_answers(pool: asyncpg.Pool | None) -> bool:
    if pool is None:
        return False
    try:
        async with asyncio.timeout(_POSTGRES_TIMEOUT_SECONDS):
            await pool.fetchval("SELECT 1")
    except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True
