"""Smoke check of the local Kafka broker with the client the services use (aiokafka).

Run by ``deploy/local-stack/stack.sh smoke`` (or directly with the workspace venv).
It exercises what the services rely on, against the real broker:

* AIOKafkaAdminClient creates a topic (3 partitions) and sees it in the metadata;
* an idempotent producer (``enable_idempotence=True, acks="all"``) sends with headers;
* a consumer in a consumer group reads everything and commits its offsets by hand;
* the admin client lists that group's committed offsets, which must match;
* the topic is deleted again.

Exit status 0 when all of it works; the failing step is printed otherwise.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from typing import TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from x0_common.kafka.clients import connection_options, process_settings

# This process's settings: X0_KAFKA__BOOTSTRAP_SERVERS and the ops identity (X0_TLS__*).
SETTINGS = process_settings().model_copy(update={"request_timeout_ms": 10_000})
BOOTSTRAP = SETTINGS.bootstrap_servers
PARTITIONS = 3
MESSAGES = 30


class SmokeError(Exception):
    """A check against the broker did not hold."""


def say(text: str, stream: TextIO = sys.stdout) -> None:
    stream.write(text + "\n")
    stream.flush()


def step(text: str) -> None:
    say(f"  {text}")


def check(condition: bool, message: str) -> None:
    # Explicit, not `assert`: this must also hold under `python -O`.
    if not condition:
        raise SmokeError(message)


async def main() -> None:
    run = uuid.uuid4().hex[:10]
    topic = f"x0.smoke.{run}"
    group = f"x0-smoke-{run}"
    started = time.perf_counter()
    say(f"kafka smoke against {BOOTSTRAP} (topic {topic})")

    admin = AIOKafkaAdminClient(**connection_options(SETTINGS))
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name=topic, num_partitions=PARTITIONS, replication_factor=1)]
        )
        topics = await admin.list_topics()
        check(topic in topics, f"{topic} missing from list_topics()")
        step(f"admin: created {topic} with {PARTITIONS} partitions")

        producer = AIOKafkaProducer(
            **connection_options(SETTINGS), enable_idempotence=True, acks="all"
        )
        await producer.start()
        try:
            for i in range(MESSAGES):
                await producer.send_and_wait(
                    topic,
                    value=f"message {i}".encode(),
                    key=f"k{i % 7}".encode(),
                    headers=[("correlation_id", f"{run}-{i}".encode())],
                )
        finally:
            await producer.stop()
        step(f"producer: {MESSAGES} messages acknowledged (idempotent, acks=all)")

        consumer = AIOKafkaConsumer(
            topic,
            **connection_options(SETTINGS),
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            seen: dict[int, int] = {}
            received = 0
            deadline = time.monotonic() + 30
            while received < MESSAGES:
                check(time.monotonic() < deadline, f"only {received}/{MESSAGES} consumed in 30 s")
                batches = await consumer.getmany(timeout_ms=1_000)
                for tp, records in batches.items():
                    for record in records:
                        correlation = dict(record.headers).get("correlation_id", b"")
                        check(correlation.startswith(run.encode()), "correlation_id header lost")
                        seen[tp.partition] = record.offset + 1
                        received += 1
            await consumer.commit()
        finally:
            await consumer.stop()
        step(f"consumer: group {group} read {received} messages and committed {seen}")

        committed = await admin.list_consumer_group_offsets(group)
        got = {tp.partition: meta.offset for tp, meta in committed.items() if tp.topic == topic}
        check(got == seen, f"committed offsets {got} != consumed {seen}")
        check(sum(got.values()) == MESSAGES, f"committed {sum(got.values())} != {MESSAGES}")
        step(f"admin: list_consumer_group_offsets({group}) = {got}")

        await admin.delete_topics([topic])
        step(f"admin: deleted {topic}")
    finally:
        await admin.close()
    say(f"kafka smoke OK in {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), timeout=90))
    except Exception as exc:  # noqa: BLE001 - a smoke check reports, it does not recover
        say(f"kafka smoke FAILED: {type(exc).__name__}: {exc}", sys.stderr)
        sys.exit(1)
