"""Values PostgreSQL cannot store are refused by the shared models, so the gateway
answers 422 and a worker a typed validation error, before any query runs; and no
exception's message (which carries such values) reaches a log line."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import BaseModel, ValidationError

from x0_common.events.crypto.keys import (
    CreateKeyRequest,
    ExportKeyRequest,
    KeyDecapsulateRequest,
    UpdateKeyConfigRequest,
)
from x0_common.events.crypto.mesh import SessionAcceptRequest
from x0_common.events.rag import Document, SearchRequest, UpsertDocuments
from x0_common.events.storable import INT4_MAX, NUL_ERROR
from x0_common.events.telemetry import NodeHeartbeat
from x0_common.logs import _JsonFormatter, describe_exception

pytestmark = [pytest.mark.unit, pytest.mark.security]

TOO_BIG = INT4_MAX + 1
# (model, fields) pairs one over int4 or holding NUL; each must be refused.
REFUSED: list[tuple[type[BaseModel], dict[str, object]]] = [
    (CreateKeyRequest, {"name": "k", "type": "X-Wing", "auto_rotate_period_seconds": TOO_BIG}),
    (UpdateKeyConfigRequest, {"name": "k", "auto_rotate_period_seconds": TOO_BIG}),
    (ExportKeyRequest, {"name": "k", "version": TOO_BIG}),
    (KeyDecapsulateRequest, {"name": "k", "ciphertext": "AA", "version": TOO_BIG}),
    (
        SessionAcceptRequest,
        {
            "responder_key": "k",
            "responder_key_version": TOO_BIG,
            "session_id": "s" * 16,
            "ciphertext": "AA",
            "initiator_public_key": "AA",
        },
    ),
    (CreateKeyRequest, {"name": "k", "type": "X-Wing", "request_id": "a\x00b"}),
    (Document, {"id": "d", "text": "before\x00after"}),
    (Document, {"id": "d\x00", "text": "t"}),
    (Document, {"id": "d", "text": "t", "metadata": {"tags": [{"na\x00me": 1}]}}),
    (Document, {"id": "d", "text": "t", "metadata": {"k": ["v\x00"]}}),
    (SearchRequest, {"collection": "c", "query": "key\x00word"}),
    (SearchRequest, {"collection": "c", "query": "q", "filter": {"lang": "e\x00n"}}),
    (
        NodeHeartbeat,
        {
            "node_id": "n",
            "mesh_id": "m",
            "timestamp": "2026-01-01T00:00:00Z",
            "software_version": "1.0\x00",
        },
    ),
]


@pytest.mark.parametrize(("model", "fields"), REFUSED)
def test_values_postgresql_cannot_store_are_refused(
    model: type[BaseModel], fields: dict[str, object]
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(fields)
    (error,) = refused.value.errors()
    assert error["type"] in {"less_than_equal", NUL_ERROR}
    if error["type"] == NUL_ERROR:
        assert "NUL" in error["msg"]


def test_json_messages_are_refused_the_same_way() -> None:
    """Workers validate the JSON they consume: the same rule applies there."""
    body = json.dumps({"collection": "c", "documents": [{"id": "d", "text": "a\u0000b"}]})
    with pytest.raises(ValidationError) as refused:
        UpsertDocuments.model_validate_json(body)
    assert refused.value.errors()[0]["type"] == NUL_ERROR


def test_the_largest_int4_and_ordinary_text_still_pass() -> None:
    assert ExportKeyRequest(name="k", version=INT4_MAX).version == INT4_MAX
    document = Document(id="d", text="naïve — ünïcode", metadata={"a": [{"b": "c"}]})
    assert document.text == "naïve — ünïcode"


def test_a_logged_exception_names_its_type_and_place_but_not_its_values() -> None:
    try:
        try:
            raise ValueError("invalid input for query argument $1: 2147483648")
        except ValueError as cause:
            raise RuntimeError("handler failed with secret-key-bytes") from cause
    except RuntimeError as error:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = (type(error), error, error.__traceback__)
        record.trace_id = record.span_id = ""
        line = _JsonFormatter().format(record)
        described = describe_exception(error)
    assert "2147483648" not in line
    assert "secret-key-bytes" not in line
    assert "builtins.ValueError" in described
    assert "builtins.RuntimeError" in described
    assert "test_storable.py" in described
