"""SIGTERM under load: a stopping service finishes or hands back what it holds.

Kubernetes stops a pod with SIGTERM and kills it after terminationGracePeriodSeconds
(deploy/k8s). These tests send SIGTERM to real service processes while requests are
in flight and find no lost or failed request:

- the gateway: requests waiting for their replies when SIGTERM arrives are answered
  (200), and the process exits 0 well within its grace period;
- a crypto worker with a second replica in its group: under steady load, SIGTERM to
  one replica loses nothing; what it had not committed is redelivered to the other.

A package of its own: no other crypto worker (the e2e package's) consumes the request
topic meanwhile, so every reply comes from the replicas started here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from x0_common.settings import KafkaSettings
from x0_common.testing.processes import ServiceProcess, service
from x0_common.testing.stack import StackEndpoints

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
ALGORITHMS = "/v1/crypto/algorithms"
# The gateway's terminationGracePeriodSeconds in deploy/k8s/base/gateway.yaml.
GATEWAY_GRACE_SECONDS = 60


@contextlib.contextmanager
def crypto_replicas(
    stack: StackEndpoints, group: str, count: int, folder: Path
) -> Iterator[list[ServiceProcess]]:
    """``count`` crypto workers sharing one consumer group."""
    environment = {**stack.environment(), "X0_CRYPTO_GROUP_ID": group}
    with contextlib.ExitStack() as stack_:
        yield [
            stack_.enter_context(
                service(
                    "x0_crypto",
                    environment=environment,
                    port_variable="X0_CRYPTO_PORT",
                    log=folder / f"crypto-{i}.log",
                )
            )
            for i in range(count)
        ]


@contextlib.contextmanager
def gateway_process(stack: StackEndpoints, folder: Path) -> Iterator[ServiceProcess]:
    environment = {
        **stack.environment(),
        "X0_GATEWAY_REPLICA_ID": f"drain-{uuid.uuid4().hex[:8]}",
        "X0_GATEWAY_REQUEST_TIMEOUT_SECONDS": "30",
        "X0_GATEWAY_METRICS_PORT": "0",
    }
    with service(
        "x0_gateway",
        environment=environment,
        port_variable="X0_GATEWAY_PORT",
        log=folder / "gateway.log",
    ) as running:
        yield running


# uvicorn shuts down gracefully on SIGTERM, then raises the signal again so that the
# exit status says what stopped it (-15 here, 143 in a shell or a kubelet's view).
CLEAN_EXIT = {0, -signal.SIGTERM}


def wait_exit(running: ServiceProcess, timeout: float) -> int:
    """The process's exit status, once it exited within ``timeout`` seconds."""
    return running.process.wait(timeout=timeout)


async def test_gateway_answers_the_requests_it_holds_after_sigterm(
    stack: StackEndpoints, admin_api_key: str, tmp_path: Path
) -> None:
    group = f"x0-crypto-drain-{uuid.uuid4().hex[:8]}"
    with (
        crypto_replicas(stack, group, 1, tmp_path) as (worker,),
        gateway_process(stack, tmp_path) as gateway,
    ):
        headers = {"Authorization": f"Bearer {admin_api_key}"}
        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=60) as client:
            assert (await client.get(ALGORITHMS)).status_code == 200
            # Hold every request in the gateway: the worker cannot answer while stopped.
            os.kill(worker.process.pid, signal.SIGSTOP)
            try:
                requests = [asyncio.create_task(client.get(ALGORITHMS)) for _ in range(20)]
                await asyncio.sleep(2)
                assert not any(task.done() for task in requests), "answered while held"
                gateway.process.send_signal(signal.SIGTERM)
                await asyncio.sleep(1)
            finally:
                os.kill(worker.process.pid, signal.SIGCONT)
            responses = await asyncio.gather(*requests, return_exceptions=True)
        statuses = [getattr(r, "status_code", repr(r)) for r in responses]
        assert statuses == [200] * len(requests), statuses
        assert await asyncio.to_thread(wait_exit, gateway, GATEWAY_GRACE_SECONDS) in CLEAN_EXIT


async def test_a_worker_stopped_under_load_loses_no_request(
    stack: StackEndpoints, admin_api_key: str, tmp_path: Path
) -> None:
    group = f"x0-crypto-drain-{uuid.uuid4().hex[:8]}"
    with (
        crypto_replicas(stack, group, 2, tmp_path) as (leaving, staying),
        gateway_process(stack, tmp_path) as gateway,
    ):
        headers = {"Authorization": f"Bearer {admin_api_key}"}
        results: list[int | str] = []
        latencies: list[float] = []
        stop = asyncio.Event()

        async def load(client: httpx.AsyncClient) -> None:
            while not stop.is_set():
                started = time.monotonic()
                try:
                    results.append((await client.get(ALGORITHMS)).status_code)
                except httpx.HTTPError as error:
                    results.append(repr(error))
                latencies.append(time.monotonic() - started)

        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=60) as client:
            users = [asyncio.create_task(load(client)) for _ in range(8)]
            await asyncio.sleep(3)
            before = len(results)
            leaving.process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(wait_exit, leaving, 30)
            await asyncio.sleep(3)
            stop.set()
            await asyncio.gather(*users)
        assert code in CLEAN_EXIT
        assert staying.process.poll() is None
        failed = [r for r in results if r != 200]
        assert not failed, f"{len(failed)} of {len(results)} failed: {failed[:5]}"
        assert before > 0
        assert len(results) > before, "no request was served after the SIGTERM"
        # Handed back at once: the leaving replica left its group, so its partitions
        # moved without waiting for the session timeout a crashed member costs.
        session_timeout = KafkaSettings().session_timeout_ms / 1000
        assert max(latencies) < session_timeout, max(latencies)
