"""The baseline: a bare aiokafka echo, with the same delivery settings as x0's core.

``python -m bench.raw_echo --topic T`` answers every message on its ``reply_to``
header with the same bytes and correlation id. No validation, no metrics, no
tracing, no DLQ: the floor the request/reply core is measured against.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from x0_common.kafka.clients import consumer_options, producer_options
from x0_common.settings import CommonSettings


async def main(topic: str) -> None:
    """Echo until killed."""
    settings = CommonSettings().kafka
    producer = AIOKafkaProducer(**producer_options(settings))
    consumer = AIOKafkaConsumer(
        topic,
        **{**consumer_options(settings), "enable_auto_commit": True},
        group_id=f"raw-echo-{topic}",
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    while not consumer.assignment():  # noqa: ASYNC110 - aiokafka offers no event for it
        await asyncio.sleep(0.05)
    print("ready", flush=True)
    async for record in consumer:
        headers = dict(record.headers)
        await producer.send_and_wait(
            headers["reply_to"].decode(),
            record.value,
            headers=[("correlation_id", headers["correlation_id"])],
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", required=True)
    asyncio.run(main(parser.parse_args().topic))
    sys.exit(0)
