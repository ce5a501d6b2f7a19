"""No request or reply value sits in Kafka in the clear, and unsealed requests are refused."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests.integration.conftest import EchoWorker, RequesterUnderTest

from x0_common.events.envelope import Headers
from x0_common.kafka.clients import connection_options, ensure_topics, producer_options
from x0_common.kafka.sealing import SEAL_HEADER
from x0_common.settings import KafkaSettings
from x0_common.testing.echo import ECHO_TYPE, EchoRequest

pytestmark = pytest.mark.integration


async def _records(
    kafka_settings: KafkaSettings, topic: str, count: int
) -> list[tuple[dict[str, str], bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        **connection_options(kafka_settings),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    found: list[tuple[dict[str, str], bytes]] = []
    try:
        async with asyncio.timeout(15):
            while len(found) < count:
                record = await consumer.getone()
                found.append(({k: v.decode() for k, v in record.headers}, record.value or b""))
    finally:
        await consumer.stop()
    return found


async def test_request_and_reply_values_are_sealed_in_kafka(
    echo_worker: EchoWorker,
    requester: RequesterUnderTest,
    kafka_settings: KafkaSettings,
    topic: str,
) -> None:
    secret = f"shared-secret-{uuid.uuid4().hex}"
    result = await requester.requester.request(
        topic, ECHO_TYPE, EchoRequest(text=secret), timeout=10
    )
    assert result["text"] == secret

    stored = await _records(kafka_settings, topic, 1)
    stored += await _records(kafka_settings, requester.requester.reply_topic, 1)
    for headers, value in stored:
        assert SEAL_HEADER in headers
        assert secret.encode() not in value
        with pytest.raises(UnicodeDecodeError):  # ciphertext, not JSON text
            value.decode()


async def test_an_unsealed_request_is_refused_and_dead_lettered(
    echo_worker: EchoWorker, kafka_settings: KafkaSettings, topic: str
) -> None:
    reply_topic = f"{topic}.forger"
    await ensure_topics(kafka_settings, [reply_topic])
    producer = AIOKafkaProducer(**producer_options(kafka_settings))
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            EchoRequest(text="forged").model_dump_json().encode(),
            headers=[
                (Headers.TYPE, ECHO_TYPE.encode()),
                (Headers.CORRELATION_ID, b"forged-1"),
                (Headers.REPLY_TO, reply_topic.encode()),
            ],
        )
    finally:
        await producer.stop()

    # The refusal itself is sealed: a forger without the key cannot even read it.
    [(headers, value)] = await _records(kafka_settings, reply_topic, 1)
    assert headers[Headers.OUTCOME] == "error"
    assert json.loads(kafka_settings.sealer().open(value, headers))["code"] == "unauthenticated"
    [(letter, _)] = await _records(kafka_settings, f"{topic}.dlq", 1)
    assert letter[Headers.DLQ_REASON] == "unsealed"
    assert echo_worker.sample("x0_responder_handled_total", type=ECHO_TYPE, outcome="ok") == 0


async def test_a_sealed_request_with_a_swapped_principal_does_not_open(
    echo_worker: EchoWorker, kafka_settings: KafkaSettings, topic: str
) -> None:
    headers = {
        Headers.TYPE: ECHO_TYPE,
        Headers.CORRELATION_ID: "swapped-1",
        Headers.PRINCIPAL: '{"tenant":"acme","subject":"a","scopes":[]}',
    }
    value = kafka_settings.sealer().seal(EchoRequest(text="x").model_dump_json().encode(), headers)
    headers[Headers.PRINCIPAL] = '{"tenant":"other","subject":"a","scopes":["admin"]}'
    producer = AIOKafkaProducer(**producer_options(kafka_settings))
    await producer.start()
    try:
        await producer.send_and_wait(
            topic, value, headers=[(k, v.encode()) for k, v in headers.items()]
        )
    finally:
        await producer.stop()

    [(letter, _)] = await _records(kafka_settings, f"{topic}.dlq", 1)
    assert letter[Headers.DLQ_REASON] == "unsealed"
    assert "does not open" in letter[Headers.DLQ_DETAIL]
