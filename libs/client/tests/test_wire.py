"""Path, query string and body of every operation, as a user of the client sees them."""

from __future__ import annotations

import json
import uuid

import httpx
import pydantic
import pytest

from x0_client import AsyncClient, Client, UnexpectedResponseError
from x0_client.testing import MockGateway
from x0_common.contract import OPERATIONS
from x0_common.events import crypto as c
from x0_common.events import rag as r
from x0_common.events import telemetry as t

from .samples import KEY, NODE, SAMPLES

pytestmark = pytest.mark.unit


def sent(operation_name: str) -> tuple[MockGateway, httpx.Request]:
    """Send the operation's sample through a Client; the gateway and the raw request."""
    gateway = MockGateway()
    gateway.handlers[operation_name] = lambda _: httpx.Response(204)
    client = Client(transport=gateway)
    with pytest.raises(UnexpectedResponseError):  # a 204 has no result: only the request matters
        getattr(client, operation_name)(SAMPLES[operation_name])
    assert len(gateway.calls) == 1, operation_name
    return gateway, gateway.calls[0].http


def test_every_routed_operation_has_a_sample() -> None:
    assert set(SAMPLES) == {o.name for o in OPERATIONS if o.http is not None}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_gateway_rebuilds_each_request_as_it_was_given(name: str) -> None:
    gateway, request = sent(name)
    call = gateway.calls[0]
    assert call.operation.name == name
    assert call.request == SAMPLES[name]
    operation = call.operation
    assert operation.http is not None
    assert request.method == operation.http.method
    if operation.http.has_body:
        assert not request.url.params, "a body route sends no query string"
        body = json.loads(request.content) if request.content else {}
        assert not set(body) & operation.http.path_fields, "path fields are not repeated"
    else:
        assert not request.content


@pytest.mark.parametrize("name", sorted(SAMPLES))
async def test_the_async_client_sends_the_same(name: str) -> None:
    gateway = MockGateway()
    gateway.handlers[name] = lambda _: httpx.Response(204)
    async with AsyncClient(transport=gateway) as client:
        with pytest.raises(UnexpectedResponseError):
            await getattr(client, name)(SAMPLES[name])
    assert gateway.calls[0].request == SAMPLES[name]


def test_paths_are_filled_from_the_mapped_fields_and_quoted() -> None:
    _, request = sent("get_document")
    assert request.url.raw_path == b"/v1/rag/collections/notes/documents/intro%20notes.md"
    _, request = sent("export_key")
    assert request.url.path == f"/v1/crypto/keys/{KEY}/export"
    assert dict(request.url.params) == {"version": "3"}
    _, request = sent("get_node")
    assert request.url.raw_path == b"/v1/telemetry/nodes/node%3A7"


def test_a_list_path_field_takes_its_one_item() -> None:
    _, request = sent("delete_documents")
    assert request.method == "DELETE"
    assert request.url.raw_path == b"/v1/rag/collections/notes/documents/intro%20notes.md"
    with pytest.raises(ValueError, match="one item per HTTP call"):
        Client(transport=MockGateway()).delete_documents(collection="notes", ids=["a", "b"])


def test_only_the_fields_set_travel() -> None:
    _, request = sent("configure_key")
    assert json.loads(request.content) == {"min_decryption_version": 2}
    _, request = sent("list_nodes")
    assert dict(request.url.params) == {"mesh_id": "lab", "status": "up", "limit": "5"}
    _, request = sent("rotate_key")
    assert request.content == b"", "a route whose fields are all in the path has no body"


def test_bytes_travel_as_base64url_and_events_keep_their_kind() -> None:
    _, request = sent("kem_encapsulate")
    assert json.loads(request.content) == {
        "algorithm": "X-Wing",
        "public_key": "AP8A_wD_AP8A_wD_AP8A_w",
    }
    _, request = sent("publish_events")
    events = json.loads(request.content)["events"]
    assert [e["kind"] for e in events] == ["heartbeat", "metrics"]
    assert "status" not in events[0], "defaults left unset are the server's to apply"


def test_history_travels_as_from_to_step() -> None:
    _, request = sent("node_history")
    assert request.url.path == "/v1/telemetry/nodes/node:7/history"
    assert dict(request.url.params) == {
        "from": "2026-11-27T19:00:00Z",
        "to": "2026-11-27T20:00:00Z",
        "step": "300",
    }


def test_wait_is_a_query_option_of_rag_writes() -> None:
    gateway = MockGateway()
    accepted = r.IngestAccepted(version="0:7", documents=2)
    gateway.handlers["upsert_documents"] = lambda _: accepted
    gateway.handlers["delete_documents"] = lambda _: accepted
    with Client(transport=gateway) as client:
        assert client.upsert_documents(SAMPLES["upsert_documents"], wait=True) == accepted
        client.upsert_documents(collection="notes", documents=[r.Document(id="x", text="y")])
        client.delete_documents(collection="notes", ids=["x"], wait=True)
    assert [dict(call.http.url.params) for call in gateway.calls] == [
        {"wait": "true"},
        {},
        {"wait": "true"},
    ]
    assert [call.options for call in gateway.calls] == [{"wait": "true"}, {}, {"wait": "true"}]


def test_mutating_calls_carry_an_idempotency_key_and_reads_do_not() -> None:
    for name in SAMPLES:
        _, request = sent(name)
        key = request.headers.get("idempotency-key")
        if request.method in {"POST", "PATCH", "DELETE"}:
            assert key is not None, name
            uuid.UUID(key)
        else:
            assert key is None, name


def test_a_create_without_request_id_gets_the_idempotency_key() -> None:
    gateway = MockGateway(handlers={"create_key": lambda _: httpx.Response(204)})
    client = Client(transport=gateway)
    with pytest.raises(UnexpectedResponseError):
        client.create_key(name="k", type="X-Wing")
    created = gateway.calls[0].request
    assert isinstance(created, c.CreateKeyRequest)
    assert created.request_id == gateway.calls[0].http.headers["idempotency-key"]
    given = c.CreateKeyRequest(name="k", type="X-Wing", request_id="mine")
    with pytest.raises(UnexpectedResponseError):
        client.create_key(given)
    assert gateway.calls[1].request == given


def test_a_request_model_or_keywords_not_both_nor_another_model() -> None:
    client = Client(transport=MockGateway())
    with pytest.raises(TypeError, match="not both"):
        client.get_node(t.NodeRequest(node_id=NODE), node_id=NODE)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="takes NodeRequest"):
        client.get_node(t.TopologyRequest(mesh_id="lab"))  # type: ignore[arg-type]


def test_keywords_are_validated_before_anything_is_sent() -> None:
    gateway = MockGateway()
    with pytest.raises(pydantic.ValidationError, match="node_id"):
        Client(transport=gateway).get_node(node_id="not a node id!")
    assert gateway.calls == []
