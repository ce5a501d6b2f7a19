"""A Jaeger v2 process for the tests, and reading traces back through its query API.

The binary is built once from the Go module proxy into the stack's cache by
``deploy/local-stack/jaeger.sh`` (as ``make up`` runs it); it runs with the committed
configuration ``deploy/jaeger/jaeger.yaml`` (in-memory storage), every port free.

Traces come back from ``/api/v3/traces`` as OTLP JSON, which is decoded into the same
:class:`~x0_common.testing.otlp.ReceivedSpan` records the in-process receiver gives, so
the chain checks of ``tests/system/traces.py`` apply to what Jaeger stored unchanged.
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from x0_common.testing.otlp import ReceivedSpan, decode_spans

REPO = Path(__file__).resolve().parents[2]
JAEGER_SCRIPT = REPO / "deploy" / "local-stack" / "jaeger.sh"
JAEGER_CONFIG = REPO / "deploy" / "jaeger" / "jaeger.yaml"
# The ports jaeger.yaml reads from its environment (each defaults to Jaeger's own).
PORT_VARIABLES = (
    "JAEGER_OTLP_GRPC_PORT",
    "JAEGER_OTLP_HTTP_PORT",
    "JAEGER_QUERY_HTTP_PORT",
    "JAEGER_QUERY_GRPC_PORT",
    "JAEGER_HEALTH_PORT",
)
# OTLP JSON writes ids as hex; protobuf's JSON mapping reads bytes as base64.
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
T = TypeVar("T")


def jaeger_binary() -> Path:
    """The cached ``jaeger`` binary, built by jaeger.sh when missing (an AssertionError
    with its output when that fails)."""
    built = subprocess.run(
        [str(JAEGER_SCRIPT)], capture_output=True, text=True, timeout=1800, check=False
    )
    assert built.returncode == 0, f"{JAEGER_SCRIPT} failed:\n{built.stderr[-3000:]}"
    binary = Path(built.stdout.strip())
    assert binary.is_file(), f"{JAEGER_SCRIPT} printed {binary}, which is not a file"
    return binary


def _hex_ids_to_base64(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                base64.b64encode(bytes.fromhex(value)).decode()
                if key in _ID_FIELDS and isinstance(value, str)
                else _hex_ids_to_base64(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_hex_ids_to_base64(item) for item in node]
    return node


def decode_otlp_json(traces_data: dict[str, Any]) -> list[ReceivedSpan]:
    """The spans of an OTLP JSON ``TracesData`` object (``{"resourceSpans": [...]}``)."""
    message = json_format.ParseDict(
        _hex_ids_to_base64(traces_data), TracesData(), ignore_unknown_fields=True
    )
    return decode_spans(ExportTraceServiceRequest(resource_spans=message.resource_spans))


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Jaeger:
    """A running Jaeger: where the services send OTLP, where its query API answers."""

    otlp_endpoint: str
    query_url: str
    log: Path

    def get(self, path: str, **params: str) -> Any:
        """GET ``path`` of the query API; the JSON body (``None`` for a 404, which is how
        it answers a search that found nothing)."""
        query = urllib.parse.urlencode(params)
        url = f"{self.query_url}{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - ours
                return json.load(response)
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise AssertionError(f"GET {url}: {error.code} {error.read()[:500]!r}") from None

    def services(self) -> list[str]:
        """The service names Jaeger has spans of (``/api/v3/services``)."""
        return list(self.get("/api/v3/services").get("services", []))

    def find(self, service: str, start_ns: int, end_ns: int) -> list[ReceivedSpan]:
        """Every span of the traces with a span of ``service`` that started between
        ``start_ns`` and ``end_ns`` (``/api/v3/traces``)."""
        body = self.get(
            "/api/v3/traces",
            **{
                "query.service_name": service,
                "query.start_time_min": _rfc3339(start_ns),
                "query.start_time_max": _rfc3339(end_ns),
                "query.num_traces": "100",
            },
        )
        return [] if body is None else decode_otlp_json(body["result"])

    def trace(self, trace_id: str) -> tuple[ReceivedSpan, ...]:
        """One trace by id (``/api/v3/traces/<id>``); empty when Jaeger has none."""
        body = self.get(f"/api/v3/traces/{trace_id}")
        return () if body is None else tuple(decode_otlp_json(body["result"]))

    def wait_for(self, found: Callable[[], T | None], *, timeout: float, what: str) -> T:
        """Poll ``found`` until it returns something, or fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while (result := found()) is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"Jaeger did not return {what} within {timeout:.0f} s")
            time.sleep(0.25)
        return result
