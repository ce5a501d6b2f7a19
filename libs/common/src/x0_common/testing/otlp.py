"""A small OTLP/HTTP trace receiver, for tests that read spans off the real wire.

Services under test export with their ordinary OTLP exporter
(``OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint``); the receiver decodes each
``ExportTraceServiceRequest`` (protobuf, optionally gzip- or deflate-compressed)
into :class:`ReceivedSpan` records that tests inspect across processes::

    with OtlpReceiver() as receiver:
        ...  # start services pointing at receiver.endpoint, send a request
        root = receiver.wait_for(lambda spans: find_root(spans), timeout=10)

Only traces are accepted (``POST /v1/traces``); the JSON encoding is refused with
415, a body that does not decode with 400, as a collector would.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TypeVar

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.trace import SpanKind, StatusCode

__all__ = ["OtlpReceiver", "ReceivedSpan", "decode_spans", "is_descendant", "render_tree"]

_T = TypeVar("_T")

# OTLP numbers kinds from 1 (0 is "unspecified", which the specification reads as
# internal); the API's SpanKind numbers them from 0.
_KINDS = {
    0: SpanKind.INTERNAL,
    1: SpanKind.INTERNAL,
    2: SpanKind.SERVER,
    3: SpanKind.CLIENT,
    4: SpanKind.PRODUCER,
    5: SpanKind.CONSUMER,
}
_PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived: ids as lowercase hex, ``parent_span_id`` empty for a root."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: SpanKind
    service: str
    scope: str
    start_ns: int
    end_ns: int
    status: StatusCode
    attributes: Mapping[str, object] = field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()
    """``(trace_id, span_id)`` of each linked span (a batch consumer links its messages)."""

    @property
    def is_root(self) -> bool:
        """No parent: the span started its trace."""
        return not self.parent_span_id

    def describe(self) -> str:
        """One line for assertion messages: service, kind, name and ids."""
        parent = self.parent_span_id or "-" * 16
        return (
            f"{self.service:<14} {self.kind.name:<8} {self.name!r} "
            f"span={self.span_id} parent={parent}"
        )


def _value(value: AnyValue) -> object:
    # str, bool, int, float, bytes; arrays as tuples, key-value lists as dicts.
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(_value(item) for item in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Sequence[KeyValue]) -> dict[str, object]:
    return {pair.key: _value(pair.value) for pair in pairs}


def decode_spans(request: ExportTraceServiceRequest) -> list[ReceivedSpan]:
    """Flatten an export request into spans, each with its resource's ``service.name``."""
    spans: list[ReceivedSpan] = []
    for resource_spans in request.resource_spans:
        service = str(_attributes(resource_spans.resource.attributes).get("service.name", ""))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_KINDS.get(span.kind, SpanKind.INTERNAL),
                        service=service,
                        scope=scope_spans.scope.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        status=StatusCode(span.status.code),
                        attributes=_attributes(span.attributes),
                        links=tuple(
                            (link.trace_id.hex(), link.span_id.hex()) for link in span.links
                        ),
                    )
                )
    return spans


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    msg = f"unsupported Content-Encoding {encoding!r}"
    raise ValueError(msg)


class OtlpReceiver:
    """An OTLP/HTTP trace endpoint on ``127.0.0.1`` in a background thread.

    Thread-safe: the server thread appends, tests read :attr:`spans` or block in
    :meth:`wait_for`. Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._spans: list[ReceivedSpan] = []
        self._changed = threading.Condition()
        self.rejected = 0
        """Export requests answered with an error status (malformed or unsupported)."""
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port the receiver listens on."""
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        """The value for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter adds ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> OtlpReceiver:
        """Serve in a daemon thread; returns the receiver."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, name="otlp-receiver", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    @property
    def spans(self) -> tuple[ReceivedSpan, ...]:
        """Every span received so far, in arrival order."""
        with self._changed:
            return tuple(self._spans)

    def trace(self, trace_id: str) -> tuple[ReceivedSpan, ...]:
        """The spans received so far of one trace."""
        return tuple(span for span in self.spans if span.trace_id == trace_id)

    def clear(self) -> None:
        """Forget every span received so far."""
        with self._changed:
            self._spans.clear()

    def wait_for(
        self, predicate: Callable[[tuple[ReceivedSpan, ...]], _T], timeout: float = 10.0
    ) -> _T:
        """Block until ``predicate(spans)`` is truthy and return that value.

        The predicate runs on every arrival (and once at once); ``TimeoutError`` after
        ``timeout`` seconds, naming how many spans had arrived.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(tuple(self._spans))
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    msg = f"no span set satisfied the predicate within {timeout} s "
                    msg += f"({len(self._spans)} spans received)"
                    raise TimeoutError(msg)
                self._changed.wait(remaining)

    def _add(self, spans: list[ReceivedSpan]) -> None:
        with self._changed:
            self._spans.extend(spans)
            self._changed.notify_all()

    def _reject(self) -> None:
        with self._changed:
            self.rejected += 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the exporter's session expects

            def do_POST(self) -> None:
                if self.path.split("?", 1)[0] != "/v1/traces":
                    self._answer(HTTPStatus.NOT_FOUND, b"")
                    return
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                content_type = self.headers.get("Content-Type", "").split(";", 1)[0].strip()
                if content_type != _PROTOBUF:
                    receiver._reject()
                    self._answer(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, b"")
                    return
                try:
                    raw = _decompress(body, self.headers.get("Content-Encoding", "").lower())
                    request = ExportTraceServiceRequest.FromString(raw)
                except (ValueError, OSError, zlib.error, DecodeError):
                    receiver._reject()
                    self._answer(HTTPStatus.BAD_REQUEST, b"")
                    return
                receiver._add(decode_spans(request))
                self._answer(HTTPStatus.OK, ExportTraceServiceResponse().SerializeToString())

            def _answer(self, status: HTTPStatus, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", _PROTOBUF)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                # One line per export on stderr would drown the test's own output.
                return

        return _Handler


def is_descendant(
    span: ReceivedSpan, ancestor: ReceivedSpan, spans: Sequence[ReceivedSpan]
) -> bool:
    """Whether ``ancestor`` is on ``span``'s parent chain (among ``spans``)."""
    by_id = {candidate.span_id: candidate for candidate in spans}
    seen: set[str] = set()
    current = span
    while current.parent_span_id and current.parent_span_id not in seen:
        if current.parent_span_id == ancestor.span_id:
            return True
        seen.add(current.span_id)
        parent = by_id.get(current.parent_span_id)
        if parent is None:
            return False
        current = parent
    return False


def render_tree(spans: Sequence[ReceivedSpan]) -> str:
    """The spans as an indented parent/child tree, one span a line (for failure messages).

    Spans whose parent did not arrive are shown as roots, marked ``(orphan)``.
    """
    ids = {span.span_id for span in spans}
    children: dict[str, list[ReceivedSpan]] = {}
    for span in sorted(spans, key=lambda item: item.start_ns):
        children.setdefault(span.parent_span_id, []).append(span)
    lines: list[str] = []

    def walk(span: ReceivedSpan, depth: int, mark: str) -> None:
        lines.append("  " * depth + span.describe() + mark)
        for child in children.get(span.span_id, []):
            walk(child, depth + 1, "")

    for span in sorted(spans, key=lambda item: item.start_ns):
        if span.is_root:
            walk(span, 0, "")
        elif span.parent_span_id not in ids:
            walk(span, 0, " (orphan)")
    return "\n".join(lines) or "(no spans)"
