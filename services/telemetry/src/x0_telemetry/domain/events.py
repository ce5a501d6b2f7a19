"""Checking one ingest record: which events are stored and which are dead-lettered.

A record is accepted when its ``x0-type`` header names a telemetry event type, its
value validates as that type's model, its timestamp is at most the allowed clock skew
ahead of now and no older than the retention period. Anything else is refused with a
stable reason (the ``x0-dlq-reason`` header):

=================== ===================================================================
reason              when
=================== ===================================================================
undecodable         the value is not JSON, or a header is not UTF-8
unknown_type        no ``x0-type`` header, or one that names no telemetry event
schema_mismatch     the JSON does not match the model (includes a missing or naive
                    timestamp, and a body whose ``kind`` is not its header's type)
future_timestamp    stamped more than ``max_clock_skew`` after now
beyond_retention    stamped before now - retention (its partition is gone or going)
=================== ===================================================================

The ingest refuses more (who sent it, the tenant's node quota): ``unauthenticated``,
``forbidden`` and ``quota_exceeded`` (:mod:`x0_telemetry.handlers.ingest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from pydantic import ValidationError

from x0_common.contract import OPERATION_OF_KIND
from x0_common.events.envelope import Headers
from x0_common.events.telemetry import (
    BeyondRetention,
    FutureTimestamp,
    NodeHeartbeat,
    NodeMetrics,
    check_timestamp,
)

# The model of each event ``x0-type``, from the contract's rows (kind -> operation).
MODEL_OF_KIND: Final[dict[str, type[NodeHeartbeat] | type[NodeMetrics]]] = {
    "heartbeat": NodeHeartbeat,
    "metrics": NodeMetrics,
}
EVENT_TYPES: Final = {
    op.message_type: MODEL_OF_KIND[kind] for kind, op in OPERATION_OF_KIND.items()
}
# The contract row of each event ``x0-type`` (its scope: who may publish it).
EVENT_OPERATIONS: Final = {op.message_type: op for op in OPERATION_OF_KIND.values()}
# The ``type`` label of x0_telemetry_events_total for each accepted model.
KIND_LABEL: Final = {model: kind for kind, model in MODEL_OF_KIND.items()}


@dataclass(frozen=True, slots=True)
class Refused:
    """A record that goes to the DLQ, and why (details never quote input values)."""

    reason: str
    detail: str
    type_label: str  # heartbeat | metrics | unknown
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Limits:
    """The time window an accepted event must fall in."""

    max_clock_skew: timedelta
    retention: timedelta


def decode_headers(raw: Sequence[tuple[str, bytes]]) -> tuple[dict[str, str], str | None]:
    """Headers as text, plus the name of the first one that is not UTF-8 (if any).

    Headers that do not decode are left out, so the rest can still travel with the
    dead letter.
    """
    decoded: dict[str, str] = {}
    bad: str | None = None
    for name, value in raw:
        try:
            decoded[name] = value.decode() if value is not None else ""
        except UnicodeDecodeError:
            bad = bad or name
    return decoded, bad


def check_record(
    raw_headers: Sequence[tuple[str, bytes]],
    value: bytes | None,
    *,
    limits: Limits,
    now: datetime,
) -> NodeHeartbeat | NodeMetrics | Refused:
    """The validated event, or why the record is refused."""
    headers, bad_header = decode_headers(raw_headers)
    message_type = headers.get(Headers.TYPE, "")
    model = EVENT_TYPES.get(message_type)
    type_label = KIND_LABEL[model] if model is not None else "unknown"
    if bad_header is not None:
        return Refused(
            "undecodable", f"header {bad_header[:64]!r} is not UTF-8", type_label, headers
        )
    if model is None:
        detail = f"x0-type {message_type[:100]!r} is not a telemetry event type"
        return Refused("unknown_type", detail, "unknown", headers)
    try:
        event = model.model_validate_json(value or b"")
    except ValidationError as invalid:
        errors = invalid.errors(include_input=False, include_url=False, include_context=False)
        reason = (
            "undecodable"
            if any(e["type"] == "json_invalid" for e in errors)
            else ("schema_mismatch")
        )
        return Refused(reason, summarise(errors), type_label, headers)
    try:
        check_timestamp(event, max_skew=limits.max_clock_skew, retention=limits.retention, now=now)
    except FutureTimestamp as error:
        return Refused("future_timestamp", error.message, type_label, headers)
    except BeyondRetention as error:
        return Refused("beyond_retention", error.message, type_label, headers)
    return event


def summarise(errors: Sequence[object]) -> str:
    """Field locations and messages of validation errors (never the input values)."""
    parts = []
    for error in list(errors)[:5]:
        assert isinstance(error, dict)
        location = ".".join(map(str, error["loc"])) or "<root>"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
