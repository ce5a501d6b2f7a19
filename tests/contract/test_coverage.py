"""Every row of the contract is served everywhere it should be.

A row lacking its worker handler, its gateway route or its AsyncAPI entry fails
here (the client's methods are checked beside the client). The tables are the one
source: nothing below lists operations by hand.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from x0_common.asyncapi import document
from x0_common.contract import OPERATIONS, Crypto, Operation, Rag, Telemetry
from x0_common.kafka import Responder
from x0_common.kafka.broker import new_broker
from x0_common.settings import KafkaSettings
from x0_common.testing.kafka import responder_under_test
from x0_common.worker import responders_of
from x0_crypto.app import create_app as create_crypto
from x0_crypto.settings import CryptoSettings
from x0_gateway.app import create_app as create_gateway
from x0_gateway.settings import GatewaySettings
from x0_rag.app import create_app as create_rag
from x0_rag.settings import RagSettings
from x0_telemetry.app import create_app as create_telemetry
from x0_telemetry.settings import TelemetrySettings

pytestmark = pytest.mark.unit


def _responders(app: Any) -> tuple[Responder, ...]:
    # Building the app already ran the self-check; here the coverage is read back.
    return responders_of(app)


@pytest.mark.parametrize(
    ("build", "table"),
    [
        (lambda: create_crypto(CryptoSettings()), Crypto),
        (lambda: create_rag(RagSettings()), Rag),
        (lambda: create_telemetry(TelemetrySettings()), Telemetry),
    ],
    ids=["crypto", "rag", "telemetry"],
)
def test_every_row_on_a_worker_topic_has_its_handler(build: Any, table: Any) -> None:
    app = build()
    handled = {
        message_type for responder in _responders(app) for message_type in responder.handled_types
    }
    topics = {responder.topic for responder in _responders(app)}
    expected = {op.message_type for op in table.operations() if op.topic in topics}
    assert expected, "the worker answers some rows"
    assert expected <= handled


class Ping(BaseModel):
    """A request of a row that is not in the contract."""


def test_a_missing_handler_stops_the_worker_at_start_up() -> None:
    ping = Operation(
        name="ping",
        message_type="x0.test.ping.v1",
        topic="x0.test.ping",
        request=Ping,
        result=Ping,
        summary="ping",
        scope="internal",
    )
    settings = KafkaSettings()
    responder = responder_under_test(new_broker(settings), settings, "x0.test.ping")
    with pytest.raises(RuntimeError, match="ping"):
        responder.require([ping])

    @responder.operation(ping)
    async def on_ping(request: Ping, _: object) -> Ping:
        return request

    responder.require([ping])


def _openapi_operations() -> dict[str, tuple[str, str, dict[str, Any]]]:
    spec = create_gateway(GatewaySettings()).openapi()
    found: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for path, methods in spec["paths"].items():
        for method, entry in methods.items():
            found[entry["operationId"]] = (method.upper(), path, entry)
    return found


def test_every_row_with_a_route_is_in_the_openapi_as_declared() -> None:
    routes = _openapi_operations()
    with_routes = [op for op in OPERATIONS if op.http is not None]
    assert len(with_routes) > 40
    for operation in with_routes:
        assert operation.http is not None
        assert operation.name in routes, operation.name
        method, path, entry = routes[operation.name]
        assert (method, path) == (operation.http.method, operation.http.path)
        assert str(operation.http.status) in entry["responses"]
        assert entry["x-x0-scope"] == operation.scope
        for error in operation.errors:
            assert str(error.http_status) in entry["responses"], (operation.name, error)


def test_internal_rows_have_no_route() -> None:
    routes = _openapi_operations()
    for operation in OPERATIONS:
        if operation.scope == "internal":
            assert operation.name not in routes


def test_every_row_on_kafka_is_in_the_asyncapi_document() -> None:
    spec = json.loads(json.dumps(document()))
    names = {message["name"] for message in spec["components"]["messages"].values()}
    for operation in OPERATIONS:
        assert (operation.message_type in names) == operation.on_kafka, operation.name
