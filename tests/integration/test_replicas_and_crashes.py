"""Request/reply with several processes: gateway replicas, worker rebalances, SIGKILL."""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest
from tests.integration.conftest import Processes, RequesterUnderTest, create_topic

from x0_common.settings import KafkaSettings
from x0_common.testing import wait_until
from x0_common.testing.echo import ECHO_TYPE, EchoRequest

pytestmark = pytest.mark.integration

ECHO = ("x0_common.testing.echo",)


@pytest.mark.timeout(240)
async def test_two_requester_replicas_each_get_their_own_replies_through_a_rebalance(
    processes: Processes, kafka_settings: KafkaSettings, topic: str
) -> None:
    await create_topic(kafka_settings, topic, partitions=4)
    group = f"group-{topic}"
    processes.start(*ECHO, "--topic", topic, "--group", group)
    replicas = [
        processes.start(
            "x0_common.testing.load", "--topic", topic, "--replica", name, "--count", "1000"
        )
        for name in ("replica-a", "replica-b")
    ]
    for replica in replicas:
        assert replica.stdin is not None
        replica.stdin.write("go\n")
        replica.stdin.flush()
    # A second worker joins the group mid-load: the partitions are rebalanced.
    processes.start(*ECHO, "--topic", topic, "--group", group)

    summaries = []
    for replica in replicas:
        assert replica.stdout is not None
        line = await asyncio.to_thread(replica.stdout.readline)
        summaries.append(json.loads(line))

    for summary in summaries:
        assert summary["ok"] == 1000, summary
        assert summary["wrong"] == 0, summary
        assert summary["errors"] == [], summary


@pytest.mark.timeout(240)
async def test_a_worker_killed_mid_stream_is_redelivered_and_answered_once(
    processes: Processes,
    requester: RequesterUnderTest,
    kafka_settings: KafkaSettings,
    topic: str,
) -> None:
    await create_topic(kafka_settings, topic, partitions=1)
    group = f"group-{topic}"
    worker = processes.start(*ECHO, "--topic", topic, "--group", group)
    count = 200
    requests = [
        asyncio.create_task(
            requester.requester.request(
                topic, ECHO_TYPE, EchoRequest(text=str(i), delay_ms=20), timeout=60
            )
        )
        for i in range(count)
    ]
    # Let a part of the stream be answered, then kill the worker with no warning.
    await wait_until(lambda: sum(task.done() for task in requests) >= count // 4, timeout=30)
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)
    answered_before_kill = sum(task.done() for task in requests)
    assert answered_before_kill < count

    killed_at = time.monotonic()
    restarted = processes.start(*ECHO, "--topic", topic, "--group", group)
    results = await asyncio.gather(*requests)

    assert [result["text"] for result in results] == [str(i) for i in range(count)]
    pids = {result["worker_pid"] for result in results}
    assert pids == {worker.pid, restarted.pid}
    # Every request was answered exactly once to the caller: a reply that came
    # twice (re-processed after the crash) was dropped, never delivered again.
    replies = requester.sample("x0_requester_replies_total", type=ECHO_TYPE, outcome="ok")
    assert replies == count
    assert time.monotonic() - killed_at < 60
