"""One maximum payload, and every size limit on the way derived from it (issue 13)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from x0_common.kafka.clients import consumer_options, producer_options, topic_config
from x0_common.settings import DEFAULT_MAX_PAYLOAD_BYTES, KafkaSettings

pytestmark = pytest.mark.unit

REPO = Path(__file__).parents[3]


def test_clients_and_topics_carry_the_largest_message() -> None:
    settings = KafkaSettings(max_payload_bytes=8 * 1024 * 1024)
    largest = settings.max_message_bytes
    assert largest > settings.max_payload_bytes
    assert producer_options(settings)["max_request_size"] == largest
    assert consumer_options(settings)["max_partition_fetch_bytes"] == largest
    assert consumer_options(settings)["fetch_max_bytes"] >= largest
    assert topic_config(settings)["max.message.bytes"] == str(largest)
    # A topic's own settings are kept beside it.
    assert topic_config(settings, {"retention.ms": "1"})["retention.ms"] == "1"


@pytest.mark.parametrize(
    ("path", "pattern"),
    [
        ("deploy/local-stack/stack.sh", r"^message\.max\.bytes=(\d+)$"),
        ("docker-compose.yml", r'KAFKA_MESSAGE_MAX_BYTES: "(\d+)"'),
    ],
)
def test_the_brokers_accept_what_the_clients_send(path: str, pattern: str) -> None:
    found = re.search(pattern, (REPO / path).read_text(), re.MULTILINE)
    assert found is not None, f"{path} does not set the broker's message size"
    assert int(found.group(1)) == KafkaSettings().max_message_bytes
    assert KafkaSettings().max_payload_bytes == DEFAULT_MAX_PAYLOAD_BYTES
