"""The gateway is ready only while its reply consumer is assigned and Kafka answers."""

from __future__ import annotations

import uuid

import httpx
import pytest

from x0_common.settings import CommonSettings, KafkaSettings
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


async def test_ready_follows_the_reply_consumer(kafka_settings: KafkaSettings) -> None:
    settings = GatewaySettings(
        common=CommonSettings(kafka=kafka_settings), replica_id=f"ready-{uuid.uuid4().hex[:6]}"
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        assert (await client.get("/health/ready")).status_code == 503
        async with app.router.lifespan_context(app):
            response = await client.get("/health/ready")
            assert response.status_code == 200
            assert response.json()["checks"] == {
                "reply_consumer_assigned": True,
                "kafka": True,
                "postgres": True,
            }
        assert (await client.get("/health/ready")).status_code == 503


async def test_a_request_past_its_deadline_is_a_504_problem(
    kafka_settings: KafkaSettings, admin_api_key: str
) -> None:
    # No crypto worker consumes this group's topic fast enough for a 1 ms budget.
    settings = GatewaySettings(
        common=CommonSettings(kafka=kafka_settings),
        replica_id=f"deadline-{uuid.uuid4().hex[:6]}",
        request_timeout_seconds=0.001,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {admin_api_key}"},
        ) as client:
            response = await client.post("/v1/crypto/kem/keypair", json={"algorithm": "X-Wing"})
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "deadline_exceeded"
