"""Wiring only: broker, responder, resources, handlers and the operational endpoints."""

from __future__ import annotations

from pathlib import Path

from faststream.asgi import AsgiFastStream
from opentelemetry.sdk.trace import TracerProvider

from x0_common.contract import Crypto
from x0_common.events.crypto import TOPIC
from x0_common.kafka import Responder
from x0_common.kafka.broker import new_broker
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.postgres import create_pool, migrate
from x0_common.redis_client import create_redis
from x0_common.worker import build_worker_app
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import build_registry
from x0_crypto.handlers import register_all
from x0_crypto.managed_keys import managed_key_hooks
from x0_crypto.metrics import SERVICE, CryptoMetrics
from x0_crypto.settings import CryptoSettings

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(
    settings: CryptoSettings, tracer_provider: TracerProvider | None = None
) -> AsgiFastStream:
    """Build the crypto worker; pools open and migrations run at start-up."""
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
        settings=settings, algorithms=build_registry(), metrics=CryptoMetrics(registry)
    )
    register_all(responder, deps)
    # Managed keys (keystore + auto-rotation): start after the pool opens, stop before it closes.
    start_managed_keys, stop_managed_keys = managed_key_hooks(deps)

    async def open_resources() -> None:
        pool = await create_pool(settings.common.postgres)
        await migrate(pool, "crypto", MIGRATIONS)
        deps.resources["pool"] = pool
        deps.resources["redis"] = create_redis(settings.common.redis)

    async def close_resources() -> None:
        if "redis" in deps.resources:
            await deps.redis.aclose()
        if "pool" in deps.resources:
            await deps.pool.close()

    async def postgres_answers() -> bool:
        return bool(await deps.pool.fetchval("SELECT 1"))

    async def redis_answers() -> bool:
        return bool(await deps.redis.ping())

    return build_worker_app(
        broker,
        registry=registry,
        operations=Crypto.operations(),
        responders=[responder],
        checks={"postgres": postgres_answers, "redis": redis_answers},
        on_startup=[open_resources, start_managed_keys],
        after_shutdown=[stop_managed_keys, close_resources],
    )
