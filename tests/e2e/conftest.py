"""End-to-end: a real crypto worker process, an in-process gateway, the real broker."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from x0_common.settings import CommonSettings
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_worker(
    stack: StackEndpoints,
    module: str,
    env: dict[str, str],
    port_variable: str,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start ``python -m module`` and wait until its /health/ready answers 200."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module],
        env={
            **os.environ,
            **stack.environment(),
            **env,
            port_variable: str(port),
            "OPENBLAS_NUM_THREADS": "1",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            msg = f"{module} exited with {process.returncode} during start-up"
            raise RuntimeError(msg)
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return process, port
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.kill()
    msg = f"{module} was not ready within 90 s"
    raise RuntimeError(msg)


@pytest.fixture(scope="session")
def crypto_worker(stack: StackEndpoints) -> Iterator[int]:
    """A crypto worker in its own consumer group; yields its HTTP port."""
    process, port = start_worker(
        stack,
        "x0_crypto",
        {"X0_CRYPTO_GROUP_ID": f"x0-crypto-e2e-{uuid.uuid4().hex[:8]}"},
        "X0_CRYPTO_PORT",
    )
    yield port
    process.terminate()
    process.wait(timeout=30)


@pytest.fixture(scope="session")
async def gateway(stack: StackEndpoints, crypto_worker: int) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in process (its requester talks to the real broker)."""
    settings = GatewaySettings(
        common=CommonSettings(kafka=stack.kafka_settings()),
        replica_id=f"e2e-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=30,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", timeout=60
        ) as client:
            yield client
