"""One trace runs from the HTTP request through Kafka to the worker and back."""

from __future__ import annotations

import uuid

import httpx
import pytest
from opentelemetry.trace import SpanKind
from tests.integration.conftest import EchoWorker

from x0_common.settings import CommonSettings, KafkaSettings
from x0_common.testing import SpanCapture
from x0_common.testing.echo import ECHO_TYPE, EchoRequest
from x0_gateway.app import create_app
from x0_gateway.deps import RequesterDep
from x0_gateway.settings import GatewaySettings

pytestmark = pytest.mark.integration


async def test_gateway_worker_and_reply_spans_share_one_trace(
    span_capture: SpanCapture, kafka_settings: KafkaSettings, topic: str, echo_worker: EchoWorker
) -> None:
    settings = GatewaySettings(
        common=CommonSettings(kafka=kafka_settings), replica_id=f"trace-{uuid.uuid4().hex[:6]}"
    )
    app = create_app(settings)

    @app.post("/test/echo")
    async def echo(body: EchoRequest, requester: RequesterDep) -> dict[str, object]:
        return await requester.request(topic, ECHO_TYPE, body, timeout=10)

    span_capture.clear()
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            response = await client.post("/test/echo", json={"text": "traced"})
    assert response.status_code == 200, response.text

    spans = span_capture.spans
    server = next(s for s in spans if s.kind is SpanKind.SERVER and "/test/echo" in s.name)
    request_publish = next(
        s for s in spans if s.kind is SpanKind.PRODUCER and s.name == f"{topic} publish"
    )
    worker = next(s for s in spans if s.kind is SpanKind.CONSUMER and topic in s.name)
    reply_publish = next(
        s for s in spans if s.kind is SpanKind.PRODUCER and s.name.startswith(settings.reply_topic)
    )
    trace_id = server.context.trace_id
    assert {
        request_publish.context.trace_id,
        worker.context.trace_id,
        reply_publish.context.trace_id,
    } == {trace_id}
    # The worker's span continues the gateway's publish span read from Kafka headers.
    assert worker.parent is not None
    assert worker.parent.span_id == request_publish.context.span_id
    assert worker.parent.is_remote
