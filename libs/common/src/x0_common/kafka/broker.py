"""The one way x0 services build their FastStream Kafka broker."""

from __future__ import annotations

import logging

from faststream.kafka import KafkaBroker
from faststream.kafka.opentelemetry import KafkaTelemetryMiddleware
from faststream.security import BaseSecurity
from opentelemetry.trace import TracerProvider

from x0_common.kafka.clients import producer_options
from x0_common.settings import KafkaSettings


def new_broker(
    settings: KafkaSettings, *, tracer_provider: TracerProvider | None = None
) -> KafkaBroker:
    """A broker with x0's producer options and its one tracing layer.

    ``apply_types=False``: every subscriber is a :class:`~x0_common.kafka.Responder`,
    which validates payloads itself (so that bad ones reach the DLQ); FastStream's
    dependency injection would only add work, including a worker-thread hop per
    message to resolve the message from its context.
    """
    options = producer_options(settings)
    # FastStream takes the connection's security as one object (its consumers too).
    protocol = options.pop("security_protocol")
    context = options.pop("ssl_context", None)
    security = BaseSecurity(ssl_context=context, use_ssl=True) if protocol == "SSL" else None
    return KafkaBroker(
        **options,
        security=security,
        middlewares=(KafkaTelemetryMiddleware(tracer_provider=tracer_provider),),
        # Per-message access logs at DEBUG: at INFO they would drown everything else.
        logger=logging.getLogger("x0.faststream"),
        log_level=logging.DEBUG,
        apply_types=False,
    )
