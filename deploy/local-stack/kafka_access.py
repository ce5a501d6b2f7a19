"""Kafka topics and ACLs as code for the local stack, applied by ops tooling.

``stack.sh up`` (so ``make up``, ``make test``, ``make bench``, ``make load-ci``) runs
this as the ``ops`` identity (a super user) after the broker answers. It reads the same
table as the production overlay's Strimzi KafkaTopics and KafkaUsers
(``scripts/k8s_kafka.py``: ``topics()`` and ``principals()``) and:

- creates every topic that is missing, with its partitions, retention and message size
  limit (the broker has ``auto.create.topics.enable=false``; services no longer create
  the topics they use);
- gives each identity exactly its ACLs (StandardAuthorizer denies everything else).

What differs from the Strimzi users, on purpose:

- the gateway may create topics under ``x0.gateway.replies.`` (prefixed): each replica
  makes its own reply topic, named after its replica id (a pod name in Kubernetes, the
  host name or a test's id here); in Kubernetes they are made in advance;
- consumer groups are granted by prefix (``x0-crypto`` covers ``x0-crypto-e2e-1f2e``):
  tests and benchmarks run workers side by side in groups of their own;
- the upstream producers' one KafkaUser is one identity per producer here
  (``producer-default``, ``producer-acme``), each with the same rights.

    X0_KAFKA__BOOTSTRAP_SERVERS=... X0_TLS__CERT_FILE=... python kafka_access.py
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.protocol.admin import CreateAclsRequest

from x0_common.kafka.clients import connection_options, topic_config
from x0_common.settings import CommonSettings, KafkaSettings

ROOT = Path(__file__).resolve().parents[2]

# Kafka's wire codes (org.apache.kafka.common.resource / acl).
RESOURCE_TYPES = {"topic": 2, "group": 3, "cluster": 4}
PATTERN_TYPES = {"literal": 3, "prefix": 4}
OPERATIONS = {
    "Read": 3,
    "Write": 4,
    "Create": 5,
    "Delete": 6,
    "Alter": 7,
    "Describe": 8,
    "DescribeConfigs": 10,
    "AlterConfigs": 11,
}
ALLOW = 3
CLUSTER_NAME = "kafka-cluster"
#: Local identities per principal of the table (the rest map to themselves).
IDENTITIES = {"upstream-producer": ("producer-default", "producer-acme")}


def _load_table() -> ModuleType:
    name = "x0_k8s_kafka"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "k8s_kafka.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True, order=True)
class Binding:
    """One allowed operation of one identity on one resource (or resource prefix)."""

    resource: str  # topic, group, cluster
    name: str
    pattern: str  # literal, prefix
    operation: str


def bindings() -> dict[str, list[Binding]]:
    """Each local identity's ACLs, from the table's principals."""
    table = _load_table()
    found: dict[str, list[Binding]] = {}
    for principal, access in table.principals().items():
        rules: list[Binding] = []
        for rule in table.acls(access):
            resource = rule["resource"]
            kind = resource["type"]
            name = resource.get("name", CLUSTER_NAME)
            pattern = resource.get("patternType", "literal")
            if kind == "group":
                pattern = "prefix"
            rules += [Binding(kind, name, pattern, op) for op in rule["operations"]]
        if principal == "gateway":
            rules += [
                Binding("topic", table.REPLY_PREFIX, "prefix", op)
                for op in ("Create", "DescribeConfigs")
            ]
        for identity in IDENTITIES.get(principal, (principal,)):
            found[identity] = sorted(set(rules))
    return found


def topics() -> list[tuple[str, int, dict[str, str]]]:
    """Every topic the services use: name, partitions, configuration. The gateway's
    reply topics are its replicas' own (made by each replica under its prefix)."""
    table = _load_table()
    settings = KafkaSettings()
    return [
        (t.name, t.partitions, topic_config(settings, {"retention.ms": str(t.retention_ms)}))
        for t in table.topics()
        if not t.name.startswith(table.REPLY_PREFIX)
    ]


async def _create_topics(admin: AIOKafkaAdminClient, settings: KafkaSettings) -> int:
    existing = set(await admin.list_topics())
    missing = [
        NewTopic(name, partitions, settings.replication_factor, topic_configs=config)
        for name, partitions, config in topics()
        if name not in existing
    ]
    if not missing:
        return 0
    response = await admin.create_topics(missing)
    for topic, error_code, *_ in response.topic_errors:
        if error_code not in (0, TopicAlreadyExistsError.errno):
            msg = f"creating topic {topic!r} failed with Kafka error code {error_code}"
            raise RuntimeError(msg)
    return len(missing)


async def _create_acls(admin: AIOKafkaAdminClient) -> int:
    count = 0
    node = admin._client.get_random_node()
    for identity, rules in bindings().items():
        for rule in rules:
            request = CreateAclsRequest(
                RESOURCE_TYPES[rule.resource],
                rule.name,
                PATTERN_TYPES[rule.pattern],
                f"User:{identity}",
                "*",
                OPERATIONS[rule.operation],
                ALLOW,
            )
            response: Any = await admin._client.send(node, request)
            for error_code, message in response.creation_responses:
                if error_code != 0:
                    msg = f"ACL {identity} {rule} refused: error {error_code} {message}"
                    raise RuntimeError(msg)
            count += 1
    return count


async def apply(settings: KafkaSettings) -> str:
    """Creates the missing topics and every ACL (creating an existing ACL is a no-op);
    returns a one-line summary."""
    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        created = await _create_topics(admin, settings)
        acls = await _create_acls(admin)
    finally:
        await admin.close()
    return (
        f"topics and ACLs as code applied: {len(topics())} topics ({created} created), "
        f"{acls} ACLs for {len(bindings())} identities"
    )


def main() -> int:
    """Applies the topics and ACLs to the broker of ``X0_KAFKA__*`` as ``X0_TLS__*``."""
    print(asyncio.run(apply(CommonSettings().kafka)))  # noqa: T201 - a command's output
    return 0


if __name__ == "__main__":
    sys.exit(main())
