"""The AsyncAPI document of the topics upstream producers may write to, from the models.

``python -m x0_common.asyncapi > docs/asyncapi.json`` regenerates it; a test fails
when the committed file differs from what the models say. One source of truth: the
same pydantic models the producers and the consumers use.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from x0_common.events import rag, telemetry
from x0_common.events.envelope import Headers

# (topic, x0-type, payload model, what it does, what the Kafka key is)
MESSAGES: list[tuple[str, str, type[BaseModel], str, str]] = [
    (
        rag.INGEST_TOPIC,
        rag.RagTypes.UPSERT,
        rag.UpsertDocuments,
        "Insert or replace documents of a collection (their old chunks go).",
        "the collection name (one collection's writes stay in order)",
    ),
    (
        rag.INGEST_TOPIC,
        rag.RagTypes.DELETE,
        rag.DeleteDocuments,
        "Delete documents of a collection; missing ids are no-ops.",
        "the collection name (one collection's writes stay in order)",
    ),
    (
        telemetry.EVENTS_TOPIC,
        telemetry.TelemetryTypes.HEARTBEAT,
        telemetry.NodeHeartbeat,
        "A mesh node is alive, with its reported status and software version. Stored once "
        "per (node_id, timestamp, type); an older event never replaces a newer state; a "
        "timestamp beyond the allowed clock skew, or a malformed event, goes to "
        f"`{telemetry.EVENTS_TOPIC}.dlq` with the reason.",
        "the node_id (one node's events stay in order)",
    ),
    (
        telemetry.EVENTS_TOPIC,
        telemetry.TelemetryTypes.METRICS,
        telemetry.NodeMetrics,
        "A mesh node's resource and network figures and its neighbours with link quality. "
        "Stored once per (node_id, timestamp, type); an older event never replaces a newer "
        "state; a timestamp beyond the allowed clock skew, or a malformed event, goes to "
        f"`{telemetry.EVENTS_TOPIC}.dlq` with the reason.",
        "the node_id (one node's events stay in order)",
    ),
]

_HEADERS: dict[str, Any] = {
    "type": "object",
    "required": [Headers.TYPE],
    "properties": {
        Headers.TYPE: {"type": "string", "description": "message type and version"},
        Headers.TRACEPARENT: {"type": "string", "description": "W3C trace context"},
        Headers.TRACESTATE: {"type": "string"},
        Headers.BAGGAGE: {"type": "string"},
        Headers.CORRELATION_ID: {"type": "string"},
        Headers.PRINCIPAL: {"type": "string", "description": "set by the gateway"},
    },
}


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document."""
    _, schemas = models_json_schema(
        [(model, "validation") for _, _, model, _, _ in MESSAGES],
        ref_template="#/components/schemas/{model}",
    )
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for topic, message_type, model, summary, key_meaning in MESSAGES:
        key = message_type.replace(".", "_")
        messages[key] = {
            "name": message_type,
            "summary": summary,
            "contentType": "application/json",
            "headers": {
                **_HEADERS,
                "properties": {
                    **_HEADERS["properties"],
                    Headers.TYPE: {"const": message_type},
                },
            },
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
            "bindings": {"kafka": {"key": {"type": "string", "description": key_meaning}}},
        }
        channel = channels.setdefault(topic.replace(".", "_"), {"address": topic, "messages": {}})
        channel["messages"][key] = {"$ref": f"#/components/messages/{key}"}
    for channel_key, channel in channels.items():
        operations[f"publish_{channel_key}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_key}"},
            "messages": [
                {"$ref": f"#/channels/{channel_key}/messages/{m}"} for m in channel["messages"]
            ],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "x0tta6bl4 topics for upstream producers",
            "version": "1.0.0",
            "description": "Generated from x0_common.events by `python -m x0_common.asyncapi`.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas.get("$defs", {})},
    }


def render() -> str:
    """The document as stable, indented JSON."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
