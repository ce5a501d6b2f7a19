"""Client options chosen on purpose, in one place.

aiokafka and FastStream default to ``acks=1`` without idempotence and to
auto-committed offsets (at-most-once); x0 wants at-least-once, so every producer
here waits for all in-sync replicas with idempotence on, and every consumer
commits by hand only after its work is durable.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from x0_common.settings import KafkaSettings


def producer_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for an ``AIOKafkaProducer`` (or FastStream's ``KafkaBroker``)."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "acks": "all",
        "enable_idempotence": True,
        # Latency matters more than batching for request/reply traffic.
        "linger_ms": 0,
    }


def consumer_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for an ``AIOKafkaConsumer`` that commits by hand."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "enable_auto_commit": False,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "fetch_min_bytes": 1,
        "session_timeout_ms": settings.session_timeout_ms,
        "heartbeat_interval_ms": settings.heartbeat_interval_ms,
    }


async def ensure_topics(
    settings: KafkaSettings,
    names: list[str],
    *,
    partitions: int = 1,
    config: dict[str, str] | None = None,
) -> None:
    """Create the topics that do not exist yet; existing ones are left as they are."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        request_timeout_ms=settings.request_timeout_ms,
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        if not missing:
            return
        new_topics = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=settings.replication_factor,
                topic_configs=config or {},
            )
            for name in missing
        ]
        response = await admin.create_topics(new_topics)
        for topic, error_code, *_ in response.topic_errors:
            # Another replica may have created it between our list and create.
            if error_code not in (0, TopicAlreadyExistsError.errno):
                msg = f"creating topic {topic!r} failed with Kafka error code {error_code}"
                raise RuntimeError(msg)
    finally:
        await admin.close()
