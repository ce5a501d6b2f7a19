"""Wiring only: broker, responder, dependencies, handlers and the operational endpoints."""

from __future__ import annotations

from pathlib import Path

from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider

from x0_common.contract import Crypto
from x0_common.events.crypto import TOPIC
from x0_common.kafka import Responder
from x0_common.kafka.broker import new_broker
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.resources import Stores
from x0_common.worker import build_worker_app
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import build_registry
from x0_crypto.handlers import register_all
from x0_crypto.handlers.rotation import auto_rotation
from x0_crypto.metrics import SERVICE, CryptoMetrics
from x0_crypto.settings import CryptoSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: CryptoSettings, tracer_provider: TracerProvider | None = None
) -> AsgiFastStream:
    """Build the crypto worker; stores and the keystore open at start-up."""
    registry = new_registry()
    kafka = settings.common.kafka
    broker = new_broker(kafka, tracer_provider=tracer_provider)
    responder = Responder(
        broker,
        topic=TOPIC,
        group_id=settings.group_id,
        settings=kafka,
        metrics=ResponderMetrics(registry, SERVICE),
        partitions=settings.partitions,
    )
    deps = CryptoDeps(
        settings=settings,
        algorithms=build_registry(),
        metrics=CryptoMetrics(registry),
        stores=Stores(settings.common, schema="crypto", migrations=MIGRATIONS),
    )
    register_all(responder, deps)
    return build_worker_app(
        broker,
        registry=registry,
        operations=Crypto.operations(),
        responders=[responder],
        stores=deps.stores,
        on_startup=[deps.open_keys],
        background=[auto_rotation(deps)],
    )
