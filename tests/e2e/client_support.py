"""What the x0-client e2e tests share: a gateway process in front of the e2e workers
with ``X0_API_KEY`` exported, and ways to run the ``x0`` command (a process of its own,
or in a pseudo-terminal). Test modules import the fixture to use it."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from x0_common.testing.processes import service_process
from x0_common.testing.stack import StackEndpoints

X0 = str(Path(sys.executable).with_name("x0"))


@pytest.fixture(scope="module")
def gateway_url(
    stack: StackEndpoints,
    crypto_worker: int,
    rag_worker: int,
    telemetry_worker: int,
    admin_api_key: str,
) -> Iterator[str]:
    """A gateway process in front of the e2e workers; yields its base URL, with
    ``X0_API_KEY`` exported as users do (every ``x0`` process inherits it)."""
    environment = {
        **stack.environment(),
        "X0_GATEWAY_REPLICA_ID": f"e2e-cli-{uuid.uuid4().hex[:8]}",
        "X0_GATEWAY_REQUEST_TIMEOUT_SECONDS": "30",
        "X0_GATEWAY_METRICS_PORT": "0",
    }
    with (
        pytest.MonkeyPatch.context() as exported,
        service_process(
            "x0_gateway", environment=environment, port_variable="X0_GATEWAY_PORT"
        ) as port,
    ):
        exported.setenv("X0_API_KEY", admin_api_key)
        yield f"http://127.0.0.1:{port}"


async def x0(
    url: str,
    *args: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
    environment: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``x0 args...`` with ``X0_URL=url``.

    In a thread, so that the session's event loop keeps running meanwhile: the e2e
    package's in-process gateway lives on it, and its Kafka clients time out when the
    loop stands still for minutes of command runs.
    """
    return await asyncio.to_thread(
        subprocess.run,
        [X0, *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "X0_URL": url, "X0_MAX_ATTEMPTS": "2", **(environment or {})},
        timeout=120,
        check=False,
    )


async def ok(url: str, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> bytes:
    """``x0 args...``'s stdout, once it exited 0."""
    finished = await x0(url, *args, stdin=stdin, cwd=cwd)
    assert finished.returncode == 0, (args, finished.stderr.decode())
    return finished.stdout


async def as_json(url: str, *args: str) -> Any:
    """``x0 args... --json``'s output, decoded."""
    return json.loads(await ok(url, *args, "--json"))


async def in_terminal(url: str, *args: str) -> tuple[int, str]:
    """Run ``x0 args...`` with a pseudo-terminal as stdin, stdout and stderr; its exit
    code and everything it wrote (in a thread, as :func:`x0`)."""
    return await asyncio.to_thread(_in_terminal, url, *args)


def _in_terminal(url: str, *args: str, timeout: float = 120.0) -> tuple[int, str]:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [X0, *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "X0_URL": url, "TERM": "xterm-256color", "COLUMNS": "100"},
        close_fds=True,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    os.close(controller)
    code = process.wait(timeout=10)
    return code, b"".join(chunks).decode("utf-8", errors="replace")
