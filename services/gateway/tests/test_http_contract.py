"""The gateway's HTTP contract that needs no broker: health, errors, OpenAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from x0_common.errors import Conflict
from x0_gateway.app import create_app
from x0_gateway.metrics_server import metrics_server
from x0_gateway.problems import PROBLEM_JSON

from .http_support import in_process_client, unit_settings

pytestmark = pytest.mark.unit


@pytest.fixture
def app() -> FastAPI:
    """A gateway whose lifespan never runs: its requester is not started."""
    # An unroutable broker: nothing here may reach Kafka.
    settings = unit_settings()
    application = create_app(settings)

    @application.post("/unit/conflict")
    async def conflict() -> None:
        raise Conflict("key exists", details={"name": "k1"})

    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in process."""
    async with in_process_client(app) as client:
        yield client


async def test_live_answers_while_the_process_runs(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200


async def test_not_ready_until_the_reply_consumer_is_assigned(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "reply_consumer_assigned": False,
        "kafka": False,
        "postgres": False,
    }


async def test_errors_are_problem_json_with_a_stable_code(client: httpx.AsyncClient) -> None:
    response = await client.post("/unit/conflict")
    assert response.status_code == 409
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["code"] == "conflict"
    assert body["type"] == "urn:x0:problem:conflict"
    assert body["details"] == {"name": "k1"}
    assert body["instance"] == "/unit/conflict"


async def test_unknown_routes_are_problem_json_too(client: httpx.AsyncClient) -> None:
    response = await client.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON


async def test_metrics_are_not_served_on_the_api_port(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 404
    assert "x0_http_requests_total" not in response.text


async def test_metrics_count_requests_by_route_template(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await client.get("/health/live")
    await client.get("/no/such/route")
    # Served on a port of their own, as `python -m x0_gateway` does.
    with metrics_server(app.state.registry, "127.0.0.1", 0) as port:
        async with httpx.AsyncClient() as scraper:
            text = (await scraper.get(f"http://127.0.0.1:{port}/metrics")).text
    assert (
        'x0_http_requests_total{method="GET",route="/health/live",service="gateway",status="200"}'
        in text
    )
    assert 'route="<unmatched>"' in text
    assert "/no/such/route" not in text


async def test_openapi_is_served(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "x0tta6bl4 gateway"
