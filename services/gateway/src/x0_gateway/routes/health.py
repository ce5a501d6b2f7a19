"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from x0_gateway.deps import RequesterDep

router = APIRouter(tags=["operations"])


@router.get("/health/live", summary="The process is up")
async def live() -> dict[str, str]:
    """Always 200 while the event loop answers."""
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Kafka answers and the reply consumer is assigned",
    responses={503: {"description": "not ready"}},
)
async def ready(requester: RequesterDep) -> JSONResponse:
    """200 only when requests can be sent and their replies received."""
    checks = {
        "reply_consumer_assigned": requester.ready,
        "kafka": await requester.kafka_reachable(),
    }
    status = 200 if all(checks.values()) else 503
    return JSONResponse({"ready": status == 200, "checks": checks}, status_code=status)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """This replica's own registry in the Prometheus text format."""
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
