"""The production overlay's KafkaTopics and KafkaUsers: generated, never hand-written.

scripts/k8s_kafka.py derives them from what the local stack uses (the services'
settings and x0_common's contract); these tests fail when the committed files differ
from its output, and check that the ACLs are least privilege.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.deploy import k8s

from x0_common.contract import TABLES
from x0_common.events import telemetry
from x0_common.settings import KafkaSettings
from x0_telemetry.settings import TelemetrySettings

# Some tests render the production overlay: kustomize's first build on a fresh machine.
pytestmark = [pytest.mark.unit, pytest.mark.timeout(k8s.BUILD_TIMEOUT)]
STACK_SH = k8s.ROOT / "deploy" / "local-stack" / "stack.sh"
REQUEST_TOPICS = {
    op.topic for table in TABLES for op in table.operations() if op.delivery == "request"
}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_committed_topics_and_users_are_the_generators_output() -> None:
    generator = k8s.kafka_generator()
    for path, text in generator.outputs().items():
        assert path.read_text() == text, f"{path.name} is stale: run scripts/k8s_kafka.py"


def test_the_generators_check_fails_on_a_hand_edit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = k8s.kafka_generator()
    run = subprocess.run(
        [sys.executable, str(k8s.ROOT / "scripts" / "k8s_kafka.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    # A copy edited by hand (one partition count changed) is reported stale.
    edited = tmp_path / "kafka-topics.yaml"
    edited.write_text(
        generator.TOPICS_FILE.read_text().replace("partitions: 6", "partitions: 7", 1)
    )
    monkeypatch.setattr(generator, "TOPICS_FILE", edited)
    assert generator.main(["--check"]) == 1


def test_every_topic_the_services_use_has_a_kafka_topic() -> None:
    names = {doc["spec"]["topicName"] for doc in _documents(k8s.kafka_generator().TOPICS_FILE)}
    contract = {op.topic for table in TABLES for op in table.operations() if op.on_kafka}
    assert contract <= names
    for topic in REQUEST_TOPICS:
        assert f"{topic}.dlq" in names, topic
    replies = sorted(n for n in names if n.startswith("x0.gateway.replies."))
    maximum = k8s.kafka_generator().gateway_max_replicas()
    assert replies == sorted(f"x0.gateway.replies.gateway-{i}" for i in range(maximum))
    (autoscaler,) = k8s.objects("production", "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["maxReplicas"] == maximum


def test_topic_settings_agree_with_the_local_broker_and_the_services() -> None:
    documents = _documents(k8s.kafka_generator().TOPICS_FILE)
    limit = KafkaSettings().max_message_bytes
    assert {doc["spec"]["config"]["max.message.bytes"] for doc in documents} == {limit}
    # The local broker and the production cluster take the same largest message.
    stack = re.search(r"^message\.max\.bytes=(\d+)$", STACK_SH.read_text(), re.MULTILINE)
    assert stack is not None
    assert int(stack.group(1)) == limit
    (kafka,) = k8s.objects("production", "Kafka")
    assert kafka["spec"]["kafka"]["config"]["message.max.bytes"] == limit
    # Two creators make x0.telemetry.events (the gateway and the worker): one count.
    assert TelemetrySettings.model_fields["partitions"].default == telemetry.EVENTS_PARTITIONS
    by_name = {doc["spec"]["topicName"]: doc["spec"] for doc in documents}
    # Every replica's index follows the writer's partitions one to one.
    assert by_name["x0.rag.index"]["partitions"] >= by_name["x0.rag.ingest"]["partitions"]
    retention = KafkaSettings().reply_topic_retention_ms
    for name, spec in by_name.items():
        if name.startswith("x0.gateway.replies."):
            assert (spec["partitions"], spec["config"]["retention.ms"]) == (1, retention)


def _rules(user: str) -> list[tuple[str, str, str, str]]:
    users = {d["metadata"]["name"]: d for d in _documents(k8s.kafka_generator().USERS_FILE)}
    rules = []
    for acl in users[user]["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        for operation in acl["operations"]:
            rules.append(
                (
                    resource["type"],
                    resource.get("name", ""),
                    resource.get("patternType", "literal"),
                    operation,
                )
            )
    return rules


def _writers(topic: str) -> set[str]:
    users = [d["metadata"]["name"] for d in _documents(k8s.kafka_generator().USERS_FILE)]
    found = set()
    for user in users:
        for kind, name, pattern, operation in _rules(user):
            matches = name == topic if pattern == "literal" else topic.startswith(name)
            if kind == "topic" and operation == "Write" and matches:
                found.add(user)
    return found


def test_only_the_gateway_writes_the_request_topics() -> None:
    # x0-principal is trusted because nobody else may write a request topic.
    for topic in REQUEST_TOPICS:
        assert _writers(topic) == {"x0-gateway"}, topic


def test_replies_are_written_by_workers_and_read_by_the_gateway_only() -> None:
    reply = "x0.gateway.replies.gateway-0"
    assert _writers(reply) == {"x0-crypto", "x0-rag", "x0-telemetry"}
    readers = {
        user
        for user in ("x0-gateway", "x0-crypto", "x0-rag", "x0-telemetry", "x0-keda")
        for kind, name, _, operation in _rules(user)
        if kind == "topic" and operation == "Read" and reply.startswith(name)
    }
    assert readers == {"x0-gateway"}


def test_each_worker_reads_only_its_own_topics() -> None:
    own = {"x0-crypto": "x0.crypto.", "x0-rag": "x0.rag.", "x0-telemetry": "x0.telemetry."}
    for user, prefix in own.items():
        reads = {name for kind, name, _, op in _rules(user) if kind == "topic" and op == "Read"}
        assert reads, user
        assert all(name.startswith(prefix) for name in reads), (user, reads)


def test_upstream_producers_write_only_ingest_and_events() -> None:
    rules = _rules("x0-upstream-producer")
    assert {name for kind, name, _, op in rules if op == "Write"} == {
        "x0.rag.ingest",
        "x0.telemetry.events",
    }
    assert all(op in {"Write", "Describe", "DescribeConfigs"} for _, _, _, op in rules)
    # KEDA only reads offsets: no Read, no Write anywhere.
    assert {op for _, _, _, op in _rules("x0-keda")} == {"Describe"}


def test_no_one_may_create_topics() -> None:
    users = [d["metadata"]["name"] for d in _documents(k8s.kafka_generator().USERS_FILE)]
    for user in users:
        assert all(op not in {"Create", "All", "Alter"} for *_, op in _rules(user)), user
