"""Every log line a service writes while it handles a traced request carries that trace.

The services' JSON log files are read back and laid against the spans they exported
over OTLP: a line written inside a worker's processing span (or the gateway's server
span) must name a trace that span belongs to. Requests known to log (a managed key
created and rotated, a collection created) must produce their line with their own
trace id, and an event dead-lettered by the telemetry ingest its batch span's trace id,
so the check is never vacuous.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from opentelemetry.trace import SpanKind

from tests.system.conftest import RunningService
from tests.system.traces import traced_request
from tests.system.traffic import publish_malformed_event
from x0_common.testing.otlp import OtlpReceiver, ReceivedSpan
from x0_common.testing.stack import StackEndpoints

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SERVICE_NAMES = {
    "gateway": "x0-gateway",
    "crypto": "x0-crypto",
    "rag": "x0-rag",
    "telemetry": "x0-telemetry",
}
MS = 1_000_000


@dataclass(frozen=True)
class Line:
    """A log record and the millisecond it was written (the format's resolution)."""

    service: str
    record: dict[str, Any]
    millis: int

    def __str__(self) -> str:
        record = self.record
        return (
            f"{self.service}: {record.get('time')} {record.get('level')} {record.get('logger')} "
            f"{record.get('message')!r} trace_id={record.get('trace_id')!r}"
        )


def _lines(service: RunningService) -> list[Line]:
    lines = []
    for record in service.log_records():
        # asctime: local time to the millisecond ("2026-11-27 20:23:31,123").
        written = datetime.strptime(str(record["time"]), "%Y-%m-%d %H:%M:%S,%f")
        lines.append(Line(service.name, record, round(written.timestamp() * 1000)))
    return lines


def _handling_spans(spans: tuple[ReceivedSpan, ...], service: str) -> list[ReceivedSpan]:
    """The spans inside which the service handles one request or message."""
    kinds = {SpanKind.SERVER} if service == "x0-gateway" else {SpanKind.CONSUMER}
    return [
        span
        for span in spans
        if span.service == service
        and span.kind in kinds
        and (service == "x0-gateway" or span.name.endswith(" process"))
    ]


def _inside(line: Line, span: ReceivedSpan) -> bool:
    # Log times have millisecond resolution: a line written in the span's first (or
    # last) millisecond is stamped at its start. So the line's millisecond must meet
    # the span; which span it belongs to is then proven by the trace id it carries.
    return span.start_ns < (line.millis + 1) * MS and line.millis * MS <= span.end_ns


def _find(lines: list[Line], message: str, **fields: str) -> Line:
    matches = [
        line
        for line in lines
        if line.record.get("message") == message
        and all(line.record.get(key) == value for key, value in fields.items())
    ]
    assert len(matches) == 1, f"expected one {message!r} line with {fields}, got {matches}"
    return matches[0]


def test_log_lines_written_while_handling_a_request_carry_its_trace_id(
    client: httpx.Client,
    otlp: OtlpReceiver,
    services: dict[str, RunningService],
    stack: StackEndpoints,
) -> None:
    key = f"logs-{uuid.uuid4().hex[:10]}"
    _, created = traced_request(
        client,
        otlp,
        "POST",
        "/v1/crypto/keys",
        "/v1/crypto/keys",
        body={"name": key, "type": "X-Wing"},
        status=201,
    )
    _, rotated = traced_request(
        client,
        otlp,
        "POST",
        f"/v1/crypto/keys/{key}/rotate",
        "/v1/crypto/keys/{name}/rotate",
        status=200,
    )
    collection = f"logs-{uuid.uuid4().hex[:10]}"
    _, collected = traced_request(
        client,
        otlp,
        "POST",
        "/v1/rag/collections",
        "/v1/rag/collections",
        body={"name": collection},
        status=201,
    )
    # Straight on the events topic, malformed: dead-lettered inside the ingest's span.
    dead_lettered = publish_malformed_event(stack.kafka_bootstrap, f"logs-{uuid.uuid4().hex[:8]}")
    # Every worker span of these requests has arrived once the last one's has.
    for root, service in ((created, "x0-crypto"), (rotated, "x0-crypto"), (collected, "x0-rag")):
        otlp.wait_for(
            lambda spans, root=root, service=service: any(
                s.trace_id == root.trace_id and s.service == service for s in spans
            ),
            timeout=20,
        )

    deadline = time.monotonic() + 30
    while not any(
        line.record.get("origin") == dead_lettered for line in _lines(services["telemetry"])
    ):
        assert time.monotonic() < deadline, f"no dead-letter line for {dead_lettered}"
        time.sleep(0.25)
    lines = {name: _lines(service) for name, service in services.items()}
    ingest = _find(lines["telemetry"], "message dead-lettered", origin=dead_lettered)
    ingest_traces = {
        span.trace_id
        for span in otlp.wait_for(
            lambda spans: [
                s
                for s in _handling_spans(spans, "x0-telemetry")
                if s.name.startswith("x0.telemetry.events") and _inside(ingest, s)
            ],
            timeout=20,
        )
    }
    assert ingest.record.get("trace_id") in ingest_traces, (
        f"{ingest}: not the trace of the ingest span it was written in ({ingest_traces})"
    )
    expected = [
        (_find(lines["crypto"], "managed key created", key_name=key), created),
        (_find(lines["crypto"], "managed key rotated", key_name=key), rotated),
        (_find(lines["rag"], "collection created", collection=collection), collected),
    ]
    wrong = [
        f"{line} (expected trace_id={root.trace_id})"
        for line, root in expected
        if line.record.get("trace_id") != root.trace_id
    ]
    assert not wrong, "lines of a request without its trace id:\n" + "\n".join(wrong)
    # The span id names a span of the same trace in the same service.
    spans = otlp.spans
    for line, root in expected:
        span_ids = {
            s.span_id
            for s in spans
            if s.trace_id == root.trace_id and s.service == SERVICE_NAMES[line.service]
        }
        assert line.record.get("span_id") in span_ids, f"{line}: span_id not in its trace"

    # Every line written inside a handling span, of these requests or any other the
    # session sent, carries the trace of a span it was written in.
    untraced = []
    checked = 0
    for name, service_lines in lines.items():
        handling = _handling_spans(spans, SERVICE_NAMES[name])
        for line in service_lines:
            covering = [span for span in handling if _inside(line, span)]
            if not covering:
                continue
            checked += 1
            if line.record.get("trace_id") not in {span.trace_id for span in covering}:
                names = ", ".join(f"{s.name} trace={s.trace_id}" for s in covering)
                untraced.append(f"{line} written inside {names}")
    assert checked >= len(expected)
    assert not untraced, "log lines inside a traced request without its trace id:\n" + "\n".join(
        untraced
    )
