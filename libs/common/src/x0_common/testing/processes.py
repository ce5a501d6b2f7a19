"""Start x0 services as real processes and wait until they report ready."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answers_ok(url: str) -> bool:
    """True when a GET of ``url`` answers 200 within a second (a readiness probe)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our own URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@contextmanager
def service_process(
    module: str,
    *,
    environment: Mapping[str, str],
    port_variable: str,
    timeout: float = 90.0,
    log: Path | None = None,
) -> Iterator[int]:
    """Run ``python -m module`` on a free port until its ``/health/ready`` says 200.

    Yields the port; terminates the process (SIGTERM, then SIGKILL) on exit. With
    ``log``, the process's stdout and stderr (its JSON log lines) are appended to that
    file, for tests that read them and for a post-mortem; otherwise they are discarded.
    """
    port = free_port()
    where = f"; see {log}" if log is not None else ""
    with log.open("ab") if log is not None else open(os.devnull, "wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", module],
            env={
                **os.environ,
                "OPENBLAS_NUM_THREADS": "1",
                **environment,
                port_variable: str(port),
            },
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while not answers_ok(f"http://127.0.0.1:{port}/health/ready"):
            if process.poll() is not None:
                msg = f"{module} exited with {process.returncode} during start-up{where}"
                raise RuntimeError(msg)
            if time.monotonic() > deadline:
                msg = f"{module} was not ready within {timeout:.0f} s{where}"
                raise RuntimeError(msg)
            time.sleep(0.2)
        yield port
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it has not exited after ``timeout`` s."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
