"""The OTLP/HTTP test receiver decodes what the real OTLP exporter sends."""

from __future__ import annotations

import gzip
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanKind, Status, StatusCode, get_current_span

from x0_common.testing.otlp import OtlpReceiver, ReceivedSpan, is_descendant, render_tree

pytestmark = pytest.mark.unit


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as started:
        yield started


def _provider(receiver: OtlpReceiver, compression: Compression) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "x0-unit"}))
    exporter = OTLPSpanExporter(
        endpoint=f"{receiver.endpoint}/v1/traces", compression=compression, timeout=5
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_spans_arrive_with_ids_parentage_kind_service_and_attributes(
    receiver: OtlpReceiver, compression: Compression
) -> None:
    provider = _provider(receiver, compression)
    tracer = provider.get_tracer("unit")
    with (
        tracer.start_as_current_span("GET /thing", kind=SpanKind.SERVER) as server,
        tracer.start_as_current_span(
            "x0.things publish",
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "retries": 2, "tags": ["a", "b"]},
            links=[Link(get_current_span().get_span_context())],
        ) as producer,
    ):
        producer.set_status(Status(StatusCode.ERROR))
    provider.shutdown()

    spans = receiver.wait_for(lambda got: got if len(got) == 2 else None, timeout=10)
    by_name = {span.name: span for span in spans}
    root, child = by_name["GET /thing"], by_name["x0.things publish"]
    assert root.trace_id == format(server.get_span_context().trace_id, "032x")
    assert root.is_root
    assert root.kind is SpanKind.SERVER
    assert child.parent_span_id == root.span_id == format(server.get_span_context().span_id, "016x")
    assert child.trace_id == root.trace_id
    assert child.kind is SpanKind.PRODUCER
    assert child.status is StatusCode.ERROR
    assert child.service == root.service == "x0-unit"
    assert child.scope == "unit"
    assert dict(child.attributes) == {
        "messaging.system": "kafka",
        "retries": 2,
        "tags": ("a", "b"),
    }
    assert child.links == ((root.trace_id, root.span_id),)
    assert root.links == ()
    assert child.start_ns >= root.start_ns
    assert is_descendant(child, root, spans)
    assert not is_descendant(root, child, spans)
    assert receiver.trace(root.trace_id) == spans
    tree = render_tree(spans)
    assert tree.splitlines()[1].startswith("  x0-unit"), tree  # the child is indented


def test_wait_for_times_out_naming_what_arrived(receiver: OtlpReceiver) -> None:
    def never(_spans: tuple[ReceivedSpan, ...]) -> bool:
        return False

    with pytest.raises(TimeoutError, match="0 spans received"):
        receiver.wait_for(never, timeout=0.2)


def _post(receiver: OtlpReceiver, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(  # noqa: S310 - our own local URL
        f"{receiver.endpoint}/v1/traces", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_malformed_or_json_exports_are_refused_and_counted(receiver: OtlpReceiver) -> None:
    protobuf = {"Content-Type": "application/x-protobuf"}
    assert _post(receiver, b"\xff\xff not protobuf", protobuf) == 400
    assert _post(receiver, b"not gzip", {**protobuf, "Content-Encoding": "gzip"}) == 400
    assert _post(receiver, b"{}", {"Content-Type": "application/json"}) == 415
    assert _post(receiver, gzip.compress(b""), {**protobuf, "Content-Encoding": "gzip"}) == 200
    assert receiver.rejected == 3
    assert receiver.spans == ()
