"""The AsyncAPI document of every topic, generated from the contract tables.

``python -m x0_common.asyncapi > docs/asyncapi.json`` regenerates it; a test fails
when the committed file differs from what the tables say. One source of truth: the
same rows the gateway, the workers and the client are built from.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from x0_common.contract import OPERATIONS, Operation
from x0_common.events.envelope import ErrorBody, Headers

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
_REQUEST_HEADERS: dict[str, Any] = {
    Headers.REPLY_TO: {"type": "string", "description": "the topic to answer on"},
    Headers.DEADLINE: {"type": "string", "description": "unix milliseconds; later is dropped"},
}


def _key(text: str) -> str:
    return text.replace(".", "_")


def _models() -> list[type[BaseModel]]:
    models: list[type[BaseModel]] = [ErrorBody]
    for operation in OPERATIONS:
        for model in (operation.request, operation.result):
            if model is not None and model not in models:
                models.append(model)
    return models


def _message(operation: Operation) -> dict[str, Any]:
    properties = {**_HEADERS["properties"], Headers.TYPE: {"const": operation.message_type}}
    if operation.delivery == "request":
        properties |= _REQUEST_HEADERS
    audience = "upstream producers and the services" if operation.producers else "the services"
    message: dict[str, Any] = {
        "name": operation.message_type,
        "summary": operation.summary,
        "description": f"Scope `{operation.scope}`; published by {audience}.",
        "contentType": "application/json",
        "headers": {**_HEADERS, "properties": properties},
        "payload": {"$ref": f"#/components/schemas/{operation.request.__name__}"},
        "x-x0-scope": operation.scope,
    }
    if operation.key is not None:
        message["bindings"] = {"kafka": {"key": {"type": "string", "description": operation.key}}}
    return message


def _reply(operation: Operation) -> dict[str, Any]:
    assert operation.result is not None
    return {
        "name": f"{operation.message_type}.reply",
        "summary": f"The reply: `{operation.result.__name__}`, or an `ErrorBody` when the "
        "`x0-outcome` header says `error`.",
        "contentType": "application/json",
        "payload": {
            "oneOf": [
                {"$ref": f"#/components/schemas/{operation.result.__name__}"},
                {"$ref": "#/components/schemas/ErrorBody"},
            ]
        },
    }


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document."""
    _, schemas = models_json_schema(
        [(model, "validation") for model in _models()],
        ref_template="#/components/schemas/{model}",
    )
    channels: dict[str, Any] = {
        "replies": {
            "address": "{reply_to}",
            "description": "Each gateway replica's reply topic, named by `reply_to`.",
            "parameters": {"reply_to": {"description": "the request's reply_to header"}},
            "messages": {},
        }
    }
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    on_kafka = [operation for operation in OPERATIONS if operation.on_kafka]
    for operation in on_kafka:
        key = _key(operation.message_type)
        messages[key] = _message(operation)
        channel = channels.setdefault(
            _key(operation.topic), {"address": operation.topic, "messages": {}}
        )
        channel["messages"][key] = {"$ref": f"#/components/messages/{key}"}
        entry: dict[str, Any] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{_key(operation.topic)}"},
            "summary": operation.summary,
            "messages": [{"$ref": f"#/channels/{_key(operation.topic)}/messages/{key}"}],
        }
        if operation.delivery == "request" and operation.result is not None:
            reply_key = f"{key}_reply"
            messages[reply_key] = _reply(operation)
            channels["replies"]["messages"][reply_key] = {
                "$ref": f"#/components/messages/{reply_key}"
            }
            entry["reply"] = {
                "address": {"location": f"$message.header#/{Headers.REPLY_TO}"},
                "channel": {"$ref": "#/channels/replies"},
                "messages": [{"$ref": f"#/channels/replies/messages/{reply_key}"}],
            }
        operations[operation.name] = entry
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "x0tta6bl4 topics",
            "version": "1.0.0",
            "description": "Generated from x0_common.contract by `python -m x0_common.asyncapi`. "
            "Upstream producers may publish the messages marked so; every other topic is "
            "written by the services only.",
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
