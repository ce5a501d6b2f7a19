"""Fixtures for the request/reply core on the real broker."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from faststream.kafka import KafkaBroker
from mirakuru import OutputExecutor
from prometheus_client import CollectorRegistry

from x0_common.kafka import Requester, Responder
from x0_common.kafka.broker import new_broker
from x0_common.kafka.clients import ensure_topics
from x0_common.metrics import RequesterMetrics, ResponderMetrics, new_registry
from x0_common.settings import KafkaSettings
from x0_common.testing.echo import build_echo_responder
from x0_common.testing.processes import printing_executor, python_command
from x0_common.testing.stack import StackEndpoints


@pytest.fixture
def topic() -> str:
    """A topic of this test alone."""
    return f"x0.test.{uuid.uuid4().hex[:12]}"


@dataclass
class EchoWorker:
    """An echo responder running in the test's event loop."""

    broker: KafkaBroker
    responder: Responder
    metrics: ResponderMetrics

    def sample(self, name: str, **labels: str) -> float:
        """A metric value of this worker (0 when never incremented)."""
        value = self.metrics.registry.get_sample_value(name, {"service": "echo", **labels})
        return value or 0.0


@pytest.fixture
async def echo_worker(kafka_settings: KafkaSettings, topic: str) -> AsyncIterator[EchoWorker]:
    """An in-process echo worker on ``topic``, assigned and ready."""
    broker = new_broker(kafka_settings)
    responder, metrics = build_echo_responder(broker, kafka_settings, topic, f"group-{topic}")
    await responder.ensure_topics()
    await broker.start()
    await responder.wait_assigned()
    yield EchoWorker(broker, responder, metrics)
    await responder.close()
    await broker.stop()


@dataclass
class RequesterUnderTest:
    """A started requester and its registry."""

    requester: Requester
    registry: CollectorRegistry

    def sample(self, name: str, **labels: str) -> float:
        """A metric value of this requester (0 when never incremented)."""
        return self.registry.get_sample_value(name, {"service": "test", **labels}) or 0.0


async def start_requester(
    kafka_settings: KafkaSettings, topic: str, max_in_flight: int = 10_000
) -> RequesterUnderTest:
    """A requester with its own reply topic, started."""
    registry = new_registry()
    requester = Requester(
        kafka_settings,
        reply_topic=f"{topic}.replies.{uuid.uuid4().hex[:6]}",
        metrics=RequesterMetrics(registry, "test"),
        max_in_flight=max_in_flight,
    )
    await requester.start()
    return RequesterUnderTest(requester, registry)


@pytest.fixture
async def requester(kafka_settings: KafkaSettings, topic: str) -> AsyncIterator[RequesterUnderTest]:
    """A started requester replying on a topic of its own."""
    under_test = await start_requester(kafka_settings, topic)
    yield under_test
    await under_test.requester.stop()


class Processes:
    """Subprocesses of one test, killed at its end whatever happens."""

    def __init__(self, stack: StackEndpoints) -> None:
        self._environment = stack.environment()
        self._running: list[OutputExecutor] = []

    def start(self, *arguments: str) -> subprocess.Popen[str]:
        """Start ``python -m <arguments>`` and wait for its ``ready`` line; the process's
        stdin and stdout are text pipes."""
        executor = printing_executor(python_command(*arguments), environment=self._environment)
        self._running.append(executor)
        executor.start()
        assert executor.process is not None
        return executor.process

    def stop_all(self) -> None:
        """Kill whatever still runs."""
        for executor in self._running:
            executor.kill()


@pytest.fixture
def processes(stack: StackEndpoints) -> Iterator[Processes]:
    """Start subprocesses that are cleaned up after the test."""
    running = Processes(stack)
    yield running
    running.stop_all()


async def create_topic(kafka_settings: KafkaSettings, name: str, partitions: int) -> None:
    """Create ``name`` (and its DLQ) with ``partitions`` partitions."""
    await ensure_topics(kafka_settings, [name, f"{name}.dlq"], partitions=partitions)
