"""Client options chosen on purpose, in one place.

aiokafka and FastStream default to ``acks=1`` without idempotence and to
auto-committed offsets (at-most-once); x0 wants at-least-once, so every producer
here waits for all in-sync replicas with idempotence on, and every consumer
commits by hand only after its work is durable.

Every client, producer, consumer or admin, connects with :func:`connection_options`:
the bootstrap servers, the client id and, on a mutual-TLS broker, the workload's
identity as an ``ssl.SSLContext`` that follows certificate rotation
(:mod:`x0_common.identity`). Nothing else in the code base builds security options.
"""

from __future__ import annotations

from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError, TopicAuthorizationFailedError

from x0_common.identity import client_context, source_from_settings
from x0_common.settings import CommonSettings, KafkaSettings


def connection_options(settings: KafkaSettings) -> dict[str, Any]:
    """Where and as whom to connect: keyword arguments every aiokafka client takes
    (``AIOKafkaProducer``, ``AIOKafkaConsumer``, ``AIOKafkaAdminClient``)."""
    options: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": settings.client_id,
        "request_timeout_ms": settings.request_timeout_ms,
        "security_protocol": settings.protocol,
    }
    if settings.protocol == "SSL":
        if settings.tls is None or not settings.tls.configured:
            msg = (
                "Kafka over SSL needs an identity: set X0_TLS__CERT_FILE, X0_TLS__KEY_FILE "
                "and X0_TLS__BUNDLE_FILE (or X0_KAFKA__TLS__*)"
            )
            raise ValueError(msg)
        options["ssl_context"] = client_context(
            source_from_settings(settings.tls), check_hostname=settings.tls.check_hostname
        )
    return options


def producer_options(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for an ``AIOKafkaProducer`` (or FastStream's ``KafkaBroker``)."""
    return {
        **connection_options(settings),
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
        **connection_options(settings),
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
    limit to ``max_message_bytes`` where it is lower, leaving their other settings.

    On a broker with ACLs the topics exist already (ops tooling creates them:
    deploy/local-stack/kafka_access.py, the Strimzi KafkaTopics), and a service has
    neither Create nor, on topics it only reads, DescribeConfigs: then nothing is
    created or checked. A topic that is missing and may not be created fails loudly."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
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
        for error, _message, _kind, name, entries in response.resources:
            if error == TopicAuthorizationFailedError.errno:
                # Not ours to configure: ops tooling created it with the limit.
                continue
            values = {entry[0]: entry[1] for entry in entries}
            if int(values.get("max.message.bytes") or 0) >= wanted:
                continue
            # AlterConfigs replaces every override: keep the topic's own, change one.
            own = {entry[0]: entry[1] for entry in entries if entry[3] == _TOPIC_CONFIG_SOURCE}
            own["max.message.bytes"] = str(wanted)
            changes.append(ConfigResource(ConfigResourceType.TOPIC, name, configs=own))
    if changes:
        for altered in await admin.alter_configs(changes):
            for error, message, _kind, name in altered.resources:
                if error == 0:
                    continue
                msg = (
                    f"raising max.message.bytes of topic {name!r} to {wanted} failed with "
                    f"Kafka error code {error} ({message}): ops tooling must set it"
                )
                raise RuntimeError(msg)


def process_settings(bootstrap_servers: str | None = None) -> KafkaSettings:
    """This process's own Kafka settings (``X0_KAFKA__*``, its identity in ``X0_TLS__*``),
    pointed at ``bootstrap_servers`` when given: for tools, tests and benchmarks that are
    handed only an address."""
    kafka = CommonSettings().kafka
    if bootstrap_servers is None:
        return kafka
    return kafka.model_copy(update={"bootstrap_servers": bootstrap_servers})
