"""Client options chosen on purpose, in one place.

aiokafka and FastStream default to ``acks=1`` without idempotence and to
auto-committed offsets (at-most-once); x0 wants at-least-once, so every producer
here waits for all in-sync replicas with idempotence on, and every consumer
commits by hand only after its work is durable.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
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
        # aiokafka's default (1 MiB) would refuse payloads the gateway accepts.
        "max_request_size": settings.max_message_bytes,
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
        **fetch_options(settings),
    }


def fetch_options(settings: KafkaSettings) -> dict[str, Any]:
    """Fetch sizes that hold the largest message (FastStream subscribers take them too)."""
    return {
        "max_partition_fetch_bytes": settings.max_message_bytes,
        "fetch_max_bytes": max(52_428_800, settings.max_message_bytes),
    }


def topic_config(settings: KafkaSettings, config: dict[str, str] | None = None) -> dict[str, str]:
    """A topic's configuration: ``config`` and the message size limit, set explicitly
    rather than inherited from whatever the broker's default is."""
    return {"max.message.bytes": str(settings.max_message_bytes), **(config or {})}


async def ensure_topics(
    settings: KafkaSettings,
    names: list[str],
    *,
    partitions: int = 1,
    config: dict[str, str] | None = None,
) -> None:
    """Create the topics that do not exist yet; raise existing ones' message size
    limit to ``max_message_bytes`` where it is lower, leaving their other settings."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        client_id=settings.client_id,
        request_timeout_ms=settings.request_timeout_ms,
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in names if name not in existing]
        await _raise_message_limit(admin, settings, [name for name in names if name in existing])
        if not missing:
            return
        new_topics = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=settings.replication_factor,
                topic_configs=topic_config(settings, config),
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


# DescribeConfigs' config_source of a topic's own (dynamic) setting.
_TOPIC_CONFIG_SOURCE = 1


async def _raise_message_limit(
    admin: AIOKafkaAdminClient, settings: KafkaSettings, names: list[str]
) -> None:
    if not names:
        return
    wanted = settings.max_message_bytes
    described = await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
    )
    changes = []
    for response in described:
        for _error, _message, _kind, name, entries in response.resources:
            values = {entry[0]: entry[1] for entry in entries}
            if int(values.get("max.message.bytes") or 0) >= wanted:
                continue
            # AlterConfigs replaces every override: keep the topic's own, change one.
            own = {entry[0]: entry[1] for entry in entries if entry[3] == _TOPIC_CONFIG_SOURCE}
            own["max.message.bytes"] = str(wanted)
            changes.append(ConfigResource(ConfigResourceType.TOPIC, name, configs=own))
    if changes:
        await admin.alter_configs(changes)
