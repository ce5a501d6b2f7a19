"""The client and the real gateway agree on every route (path, query names, body, wait).

The gateway's own routes (``x0_gateway.routes``) run in process; a recording stand-in
for its Kafka requester keeps what each route would publish. Every sample request sent
by the client must arrive as the message the worker would read. The e2e tests
(``tests/e2e/test_client*.py``) then run the same client against the real workers.
"""

from __future__ import annotations

import contextlib
import importlib
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from x0_client import AsyncClient, NotFoundError
from x0_common.contract import BY_TYPE, Rag, Telemetry
from x0_common.errors import NotFound
from x0_common.events import rag as r
from x0_common.events import telemetry as t
from x0_common.settings import CommonSettings, KafkaSettings
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings

from .samples import NODE, SAMPLES

pytestmark = pytest.mark.unit


class Recorder:
    """Stands in for the gateway's requester: records messages, answers nothing useful."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, BaseModel]] = []

    async def request_raw(
        self, _topic: str, message_type: str, payload: BaseModel, **_: Any
    ) -> bytes:
        self.messages.append((message_type, payload))
        raise NotFound("recorded")  # the client sees a 404: no result model needed

    async def request(
        self, _topic: str, message_type: str, payload: BaseModel, **_: Any
    ) -> dict[str, Any]:
        self.messages.append((message_type, payload))
        return {}

    async def end_offset(self, _topic: str, _partition: int) -> int:
        return 2**62  # every version was issued

    async def publish(self, _topic: str, message_type: str, payload: BaseModel, **_: Any) -> str:
        self.messages.append((message_type, payload))
        return "0:1"


def gateway_app(recorder: Recorder) -> FastAPI:
    """The gateway as ``create_app`` builds it; its lifespan never runs (no Kafka)."""
    settings = GatewaySettings(
        common=CommonSettings(kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1")),
        replica_id="agreement",
    )
    app = create_app(settings)
    app.state.requester = recorder
    # A gateway with API keys takes every caller as an admin here (who calls is not the
    # subject); one without them lets every request through already.
    try:
        testing = importlib.import_module("x0_gateway.testing")
    except ModuleNotFoundError:
        return app
    testing.authenticate_as(app)
    # Audited routes refuse without an audit writer: the recorder takes the records too.
    if hasattr(testing, "audit_through"):
        testing.audit_through(app, recorder)
    return app


class WithoutIdempotencyKey(httpx.AsyncBaseTransport):
    """Drops the ``Idempotency-Key`` header: the gateway's replay store (Redis, opened
    in its lifespan) is not the subject here; the routes' parameters are."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.headers.pop("idempotency-key", None)
        return await self.inner.handle_async_request(request)


def transport_to(recorder: Recorder) -> httpx.AsyncBaseTransport:
    return WithoutIdempotencyKey(httpx.ASGITransport(app=gateway_app(recorder)))


def samples_now() -> dict[str, BaseModel]:
    """The samples, with events stamped now (the gateway refuses old and future ones)."""
    now = datetime.now(UTC)
    events = t.PublishEvents.model_validate(
        {
            "events": [
                e.model_copy(update={"timestamp": now}) for e in SAMPLES["publish_events"].events
            ]
        }  # type: ignore[attr-defined]
    )
    return {**SAMPLES, "publish_events": events}


@pytest.mark.parametrize("wait", [False, True])
async def test_every_sample_reaches_the_worker_as_it_was_given(wait: bool) -> None:
    recorder = Recorder()
    transport = transport_to(recorder)
    async with AsyncClient("http://gateway", transport=transport) as x0:
        for name, sample in samples_now().items():
            recorder.messages.clear()
            options = {"wait": wait} if name in {"upsert_documents", "delete_documents"} else {}
            with contextlib.suppress(NotFoundError):  # the recorder's answer to a request
                await getattr(x0, name)(sample, **options)
            operation = next(o for o in BY_TYPE.values() if o.name == name)
            received = [
                payload for kind, payload in recorder.messages if kind == operation.message_type
            ]
            if operation is Telemetry.PUBLISH_EVENTS:
                received = [payload for _, payload in recorder.messages]
                assert received == list(sample.events), name  # type: ignore[attr-defined]
                continue
            assert received == [sample], (name, recorder.messages)
            if operation in {Rag.UPSERT, Rag.DELETE}:
                kinds = [kind for kind, _ in recorder.messages]
                assert (Rag.VERSION_WAIT.message_type in kinds) == wait, name


async def test_history_defaults_are_the_gateways_when_the_window_is_given() -> None:
    recorder = Recorder()
    transport = transport_to(recorder)
    async with AsyncClient("http://gateway", transport=transport) as x0:
        start = datetime(2026, 11, 27, 19, 0, 7, 250_000, tzinfo=UTC)
        with pytest.raises(NotFoundError):
            await x0.node_history(node_id=NODE, start=start, end=start.replace(hour=20))
    ((_, message),) = recorder.messages
    assert message == t.HistoryRequest(node_id=NODE, start=start, end=start.replace(hour=20))
    assert r.DeleteDocuments  # the module is the contract's, as the samples'
