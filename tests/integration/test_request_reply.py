"""The request/reply core against the real Kafka broker."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests.integration.conftest import EchoWorker, RequesterUnderTest, start_requester

from x0_common.errors import DeadlineExceeded, InvalidInput, Overloaded, ValidationFailed
from x0_common.events.envelope import Headers
from x0_common.kafka.clients import connection_options, producer_options
from x0_common.settings import KafkaSettings
from x0_common.testing import wait_until
from x0_common.testing.echo import ECHO_TYPE, EchoRequest

pytestmark = pytest.mark.integration


async def test_round_trip_returns_the_reply_to_its_request(
    echo_worker: EchoWorker, requester: RequesterUnderTest, topic: str
) -> None:
    result = await requester.requester.request(
        topic, ECHO_TYPE, EchoRequest(text="hello"), timeout=10
    )

    assert result["text"] == "hello"
    assert requester.sample("x0_requester_replies_total", type=ECHO_TYPE, outcome="ok") == 1
    assert echo_worker.sample("x0_responder_handled_total", type=ECHO_TYPE, outcome="ok") == 1


async def test_a_typed_error_travels_back_as_the_same_error(
    echo_worker: EchoWorker, requester: RequesterUnderTest, topic: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        await requester.requester.request(
            topic, ECHO_TYPE, EchoRequest(text="x", invalid=True), timeout=10
        )

    assert raised.value.details == {"field": "invalid"}
    assert (
        echo_worker.sample("x0_responder_handled_total", type=ECHO_TYPE, outcome="invalid_input")
        == 1
    )


async def test_transient_failures_are_retried_with_backoff(
    echo_worker: EchoWorker, requester: RequesterUnderTest, topic: str
) -> None:
    result = await requester.requester.request(
        topic, ECHO_TYPE, EchoRequest(text="again", transient_failures=3), timeout=10
    )

    assert result["text"] == "again"
    assert echo_worker.sample("x0_responder_retries_total", type=ECHO_TYPE) == 3


async def test_timeout_raises_in_time_and_the_late_reply_is_counted_not_delivered(
    echo_worker: EchoWorker, requester: RequesterUnderTest, topic: str
) -> None:
    timeout = 0.5
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await requester.requester.request(
            topic, ECHO_TYPE, EchoRequest(text="slow", delay_ms=1500), timeout=timeout
        )
    elapsed = time.monotonic() - started

    assert timeout <= elapsed < timeout + 0.25
    assert requester.sample("x0_requester_timeouts_total", type=ECHO_TYPE) == 1
    # The worker still answers after 1.5 s; the requester must drop that reply.
    await wait_until(
        lambda: requester.sample("x0_requester_unmatched_replies_total", reason="late") == 1
    )
    assert requester.sample("x0_requester_replies_total", type=ECHO_TYPE, outcome="ok") == 0
    assert requester.requester.in_flight == 0


async def test_the_in_flight_map_is_bounded(
    echo_worker: EchoWorker, kafka_settings: KafkaSettings, topic: str
) -> None:
    bounded = await start_requester(kafka_settings, topic, max_in_flight=2)
    try:
        slow = [
            asyncio.create_task(
                bounded.requester.request(
                    topic, ECHO_TYPE, EchoRequest(text=str(i), delay_ms=300), timeout=10
                )
            )
            for i in range(2)
        ]
        await asyncio.sleep(0.05)
        with pytest.raises(Overloaded):
            await bounded.requester.request(topic, ECHO_TYPE, EchoRequest(text="3"), timeout=10)
        assert [r["text"] for r in await asyncio.gather(*slow)] == ["0", "1"]
    finally:
        await bounded.requester.stop()


async def test_an_expired_request_is_dropped_and_counted(
    echo_worker: EchoWorker, kafka_settings: KafkaSettings, topic: str
) -> None:
    producer = AIOKafkaProducer(**producer_options(kafka_settings))
    await producer.start()
    try:
        past = str(int(time.time() * 1000) - 1000)
        headers = {
            Headers.TYPE: ECHO_TYPE,
            Headers.CORRELATION_ID: "expired-1",
            Headers.REPLY_TO: f"{topic}.nobody",
            Headers.DEADLINE: past,
        }
        value = kafka_settings.sealer().seal(
            EchoRequest(text="too late").model_dump_json().encode(), headers
        )
        await producer.send_and_wait(
            topic, value, headers=[(k, v.encode()) for k, v in headers.items()]
        )
    finally:
        await producer.stop()

    await wait_until(lambda: echo_worker.sample("x0_responder_expired_total", type=ECHO_TYPE) == 1)
    assert echo_worker.sample("x0_responder_handled_total", type=ECHO_TYPE, outcome="ok") == 0


async def _dead_letters(kafka_settings: KafkaSettings, topic: str, count: int) -> list[dict]:
    consumer = AIOKafkaConsumer(
        f"{topic}.dlq",
        **connection_options(kafka_settings),
        auto_offset_reset="earliest",
        group_id=None,
    )
    await consumer.start()
    letters: list[dict] = []
    try:
        async with asyncio.timeout(15):
            while len(letters) < count:
                record = await consumer.getone()
                letters.append(
                    {
                        "headers": {k: v.decode() for k, v in record.headers},
                        "value": record.value,
                    }
                )
    finally:
        await consumer.stop()
    return letters


async def test_poison_messages_go_to_the_dlq_and_the_next_message_is_processed(
    echo_worker: EchoWorker,
    requester: RequesterUnderTest,
    kafka_settings: KafkaSettings,
    topic: str,
) -> None:
    sealer = kafka_settings.sealer()
    producer = AIOKafkaProducer(**producer_options(kafka_settings))
    await producer.start()
    try:
        poison = [
            (b"{not json", [(Headers.TYPE, ECHO_TYPE), (Headers.CORRELATION_ID, "p-1")]),
            (b'{"txt": 1}', [(Headers.TYPE, ECHO_TYPE), (Headers.CORRELATION_ID, "p-2")]),
            (b'{"text": "no id"}', [(Headers.TYPE, ECHO_TYPE)]),
        ]
        sent: list[tuple[bytes, dict[str, str]]] = []
        for value, pairs in poison:
            # Sealed, as every request must be: what fails is the payload inside.
            headers = dict(pairs)
            sealed = sealer.seal(value, headers)
            sent.append((sealed, headers))
            await producer.send_and_wait(
                topic, sealed, headers=[(k, v.encode()) for k, v in headers.items()]
            )
    finally:
        await producer.stop()

    # The same partition, after the poison: it must still be answered.
    result = await requester.requester.request(
        topic, ECHO_TYPE, EchoRequest(text="after poison"), timeout=15
    )
    assert result["text"] == "after poison"

    letters = await _dead_letters(kafka_settings, topic, 3)
    reasons = [letter["headers"][Headers.DLQ_REASON] for letter in letters]
    assert reasons == ["undecodable", "schema_mismatch", "missing_correlation_id"]
    # Dead letters keep the sealed bytes as sent: nothing lands in the DLQ in the clear.
    assert [letter["value"] for letter in letters] == [sealed for sealed, _ in sent]
    opened = [sealer.open(sealed, headers) for sealed, headers in sent]
    assert opened == [value for value, _ in poison]
    for letter in letters:
        assert letter["headers"][Headers.DLQ_ORIGIN].startswith(f"{topic}/0/")
    assert "text" in letters[1]["headers"][Headers.DLQ_DETAIL]
    assert (
        echo_worker.sample("x0_responder_dead_lettered_total", topic=topic, reason="undecodable")
        == 1
    )


async def test_a_caller_learns_at_once_that_its_payload_was_poison(
    echo_worker: EchoWorker,
    requester: RequesterUnderTest,
    kafka_settings: KafkaSettings,
    topic: str,
) -> None:
    class WrongShape(EchoRequest):
        delay_ms: str  # type: ignore[assignment]

    with pytest.raises(ValidationFailed) as raised:
        await requester.requester.request(
            topic, ECHO_TYPE, WrongShape(text="x", delay_ms="soon"), timeout=10
        )

    assert raised.value.details["errors"][0]["loc"] == ["delay_ms"]
    letters = await _dead_letters(kafka_settings, topic, 1)
    assert letters[0]["headers"][Headers.DLQ_REASON] == "schema_mismatch"
    opened = kafka_settings.sealer().open(letters[0]["value"], letters[0]["headers"])
    assert json.loads(opened)["delay_ms"] == "soon"
