"""OpenTelemetry set-up from the standard ``OTEL_*`` variables.

One tracing layer per service: workers trace through FastStream's
``KafkaTelemetryMiddleware``; the gateway through the FastAPI instrumentation plus
the requester's own producer span. Spans are exported over OTLP only when an OTLP
endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), so a laptop without Jaeger logs no export
errors; ``OTEL_SDK_DISABLED=true`` turns tracing off.

asyncpg and redis calls are traced too (their client spans are children of the
handler's span), so one trace shows a request's database and cache work.
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def setup_tracing(
    service_name: str, *, extra_processors: tuple[SpanProcessor, ...] = ()
) -> TracerProvider:
    """Build the service's tracer provider, install it globally and return it.

    ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` win over ``service_name``,
    as the OpenTelemetry specification says they should.
    """
    provider = TracerProvider(resource=service_resource(service_name))
    if any(os.environ.get(name) for name in _ENDPOINT_VARIABLES):
        # Imported here: the exporter pulls in protobuf, unneeded when nothing exports.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    for processor in extra_processors:
        provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    _instrument_clients(provider)
    return provider


def service_resource(service_name: str) -> Resource:
    """The service's resource: ``service_name``, unless ``OTEL_SERVICE_NAME`` or
    ``OTEL_RESOURCE_ATTRIBUTES`` name it otherwise."""
    # Only the variables are merged over the name: Resource.create() with no arguments
    # would bring its "unknown_service:python" default and hide the service's name.
    return Resource.create({SERVICE_NAME: service_name}).merge(OTELResourceDetector().detect())


def _instrument_clients(provider: TracerProvider) -> None:
    # Patching is process-wide and done once: a second set-up in the same process
    # (tests build several apps) keeps the first provider's client spans.
    for instrumentor in (AsyncPGInstrumentor(), RedisInstrumentor()):  # type: ignore[no-untyped-call]
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=provider)


def current_trace_ids() -> tuple[str, str] | None:
    """The current ``(trace_id, span_id)`` as hex, or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
