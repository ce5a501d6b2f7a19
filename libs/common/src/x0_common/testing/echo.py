"""A real echo responder, for tests and benchmarks of the request/reply core.

Run it as a process: ``python -m x0_common.testing.echo --topic T --group G``.
It prints ``ready`` on stdout once its consumer is assigned, so a parent
process can wait for it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from faststream.kafka import KafkaBroker
from pydantic import BaseModel, Field

from x0_common.contract.operation import Operation
from x0_common.errors import InvalidInput, Unavailable
from x0_common.kafka.broker import new_broker
from x0_common.kafka.responder import RequestContext, Responder
from x0_common.logs import setup_logging
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.settings import CommonSettings, KafkaSettings
from x0_common.tracing import setup_tracing

ECHO_TYPE = "x0.test.echo.v1"


class EchoRequest(BaseModel):
    """Echo ``text`` back, after ``delay_ms``, failing as asked."""

    text: str
    delay_ms: int = Field(default=0, ge=0, le=60_000)
    # Fail with Unavailable this many times first (counted per correlation id).
    transient_failures: int = Field(default=0, ge=0, le=10)
    invalid: bool = False


class EchoResult(BaseModel):
    """The echoed text and the worker that answered."""

    text: str
    worker_pid: int


def build_echo_responder(
    broker: KafkaBroker, settings: KafkaSettings, topic: str, group_id: str, service: str = "echo"
) -> tuple[Responder, ResponderMetrics]:
    """Attach an echo responder for ``topic`` to ``broker``."""
    metrics = ResponderMetrics(new_registry(), service)
    # The echo holds no tenant's data: it answers senders with or without a principal.
    responder = Responder(
        broker,
        topic=topic,
        group_id=group_id,
        settings=settings,
        metrics=metrics,
        authenticate=False,
    )
    failures_seen: dict[str, int] = {}
    # The echo is not part of the contract: its row is built for the topic under test.
    operation = Operation(
        name="echo",
        message_type=ECHO_TYPE,
        topic=topic,
        request=EchoRequest,
        result=EchoResult,
        summary="Echo the text back",
        scope="internal",
    )

    @responder.operation(operation)
    async def echo(request: EchoRequest, context: RequestContext) -> EchoResult:
        if request.invalid:
            raise InvalidInput("asked to be invalid", details={"field": "invalid"})
        seen = failures_seen.get(context.correlation_id, 0)
        if seen < request.transient_failures:
            failures_seen[context.correlation_id] = seen + 1
            raise Unavailable("asked to fail for now")
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        return EchoResult(text=request.text, worker_pid=os.getpid())

    return responder, metrics


async def _main(topic: str, group_id: str) -> None:
    settings = CommonSettings()
    setup_logging("echo", settings.log_level)
    setup_tracing("x0-echo")
    broker = new_broker(settings.kafka)
    responder, _ = build_echo_responder(broker, settings.kafka, topic, group_id)
    await responder.ensure_topics()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await broker.start()
    await responder.wait_assigned()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    await stop.wait()
    await responder.close()
    await broker.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--group", required=True)
    arguments = parser.parse_args()
    asyncio.run(_main(arguments.topic, arguments.group))
