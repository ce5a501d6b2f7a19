"""The committed AsyncAPI document is what the message models say."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from x0_common.asyncapi import render
from x0_common.contract import OPERATIONS

pytestmark = pytest.mark.unit

COMMITTED = Path(__file__).parents[3] / "docs" / "asyncapi.json"


def test_the_committed_asyncapi_document_is_up_to_date() -> None:
    assert COMMITTED.read_text() == render(), (
        "regenerate with: python -m x0_common.asyncapi > docs/asyncapi.json"
    )


def test_every_message_has_its_payload_schema() -> None:
    document = json.loads(render())
    schemas = document["components"]["schemas"]
    for message in document["components"]["messages"].values():
        payload = message["payload"]
        for reference in [payload, *payload.get("oneOf", [])]:
            if "$ref" in reference:
                name = reference["$ref"].rsplit("/", 1)[-1]
                assert "properties" in schemas[name], name
    assert document["channels"]["x0_rag_ingest"]["address"] == "x0.rag.ingest"


def test_every_operation_on_kafka_is_documented_with_its_reply() -> None:
    document = json.loads(render())
    for operation in OPERATIONS:
        entry = document["operations"].get(operation.name)
        if not operation.on_kafka:
            assert entry is None
            continue
        assert entry is not None, operation.name
        assert entry["channel"]["$ref"].endswith(operation.topic.replace(".", "_"))
        assert ("reply" in entry) == (operation.delivery == "request"), operation.name


def test_telemetry_events_are_documented_keyed_by_node() -> None:
    document = json.loads(render())
    channel = document["channels"]["x0_telemetry_events"]
    assert channel["address"] == "x0.telemetry.events"
    messages = document["components"]["messages"]
    names = {messages[key]["name"] for key in channel["messages"]}
    assert names == {"telemetry.node.heartbeat.v1", "telemetry.node.metrics.v1"}
    for key in channel["messages"]:
        assert "node_id" in messages[key]["bindings"]["kafka"]["key"]["description"]
    for key in document["channels"]["x0_rag_ingest"]["messages"]:
        assert "collection" in messages[key]["bindings"]["kafka"]["key"]["description"]
