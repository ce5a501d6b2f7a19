"""Wiring only: broker, responder, dependencies, handlers and the operational endpoints."""

from __future__ import annotations

from pathlib import Path

from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider

from x0_common.contract import Crypto
from x0_common.events.crypto import TOPIC
from x0_common.resources import Stores
from x0_common.worker import Wiring, build_worker_app
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
    wiring = Wiring.of(SERVICE, settings.common, tracer_provider)
    responder = wiring.responder(TOPIC, group_id=settings.group_id, partitions=settings.partitions)
    deps = CryptoDeps(
        settings=settings,
        algorithms=build_registry(),
        metrics=CryptoMetrics(wiring.registry),
        stores=Stores(settings.common, schema="crypto", migrations=MIGRATIONS),
    )
    register_all(responder, deps)
    return build_worker_app(
        wiring,
        operations=Crypto.operations(),
        responders=[responder],
        stores=deps.stores,
        on_startup=[deps.open_keys],
        background=[auto_rotation(deps)],
    )
