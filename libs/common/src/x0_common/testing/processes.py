"""Start x0 processes, wait until they are ready, stop them: for ``make up``, tests and bench.

One mechanism, from the library ``mirakuru``: an executor starts a command in a session
of its own, waits until a readiness check passes, fails at once when the process exits
during start-up (with an HTTP check) or when the wait runs out, and stops the whole
process group with SIGTERM, then SIGKILL when the same time has passed. Two checks:

- :func:`http_executor`: the URL answers 200 (the services' ``/health/ready``,
  Prometheus's ``/-/ready``);
- :func:`printing_executor`: the process prints a line (``ready`` from the echo
  workers and load generators, which serve no HTTP).

``deploy/local-stack/services.py`` (``make up``) starts the services with the same
:func:`http_executor` and leaves them running; the tests and benchmarks use the
context managers below, which stop what they started.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any

import mirakuru.base
import psutil
from mirakuru import HTTPExecutor, OutputExecutor

from x0_common.testing.credentials import service_environment, service_of

#: Where every x0 service says it is ready (its dependencies answer).
READY_PATH = "/health/ready"

# Thread counts on purpose: numpy's BLAS and torch would otherwise fight over the cores.
BASE_ENVIRONMENT: Mapping[str, str] = {"OPENBLAS_NUM_THREADS": "1"}


def _kill_leftovers() -> None:
    """At exit, SIGKILL what this process's executors started and left running.

    Instead of mirakuru's own exit hook, which looks for its marker variable
    (``mirakuru_uuid=<pid>:<uuid>``) by substring: a test run with pid 812 ending would
    also kill the processes of another run whose marker reads ``4812:...``.
    """
    prefix = f"{os.getpid()}:"
    for process in psutil.process_iter(["environ"]):
        environ = process.info.get("environ") or {}
        if environ.get(mirakuru.base.ENV_UUID, "").startswith(prefix):
            with contextlib.suppress(psutil.Error):
                process.kill()


atexit.unregister(mirakuru.base.cleanup_subprocesses)
atexit.register(_kill_leftovers)


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


def python_command(module: str, *arguments: str) -> list[str]:
    """``python -m module arguments...`` with this interpreter (the workspace's venv)."""
    return [sys.executable, "-m", module, *arguments]


def http_executor(
    command: Sequence[str],
    *,
    ready_url: str,
    environment: Mapping[str, str] | None = None,
    output: IO[Any] | int = subprocess.DEVNULL,
    timeout: float = 90.0,
) -> HTTPExecutor:
    """An executor (not started) for ``command``, ready once ``ready_url`` answers 200.

    The process gets this process's environment, ``OPENBLAS_NUM_THREADS=1`` and
    ``environment``; its stdout and stderr go to ``output``. ``timeout`` bounds both the
    start and, on ``stop()``, the wait after SIGTERM. An x0 service (``-m x0_crypto``)
    connects to PostgreSQL and Redis as its own role and user where the stack made
    them (:func:`x0_common.testing.credentials.service_environment`).
    """
    variables = {**BASE_ENVIRONMENT, **(environment or {})}
    if (name := service_of(command)) is not None:
        variables |= service_environment(name, {**os.environ, **variables})
    return HTTPExecutor(
        list(command),
        url=ready_url,
        status=200,
        method="GET",  # mirakuru's default is HEAD, which FastAPI's GET routes answer 405
        envvars=variables,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        sleep=0.2,
    )


def printing_executor(
    command: Sequence[str],
    *,
    banner: str = "ready",
    environment: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> OutputExecutor:
    """An executor (not started) for ``command``, ready once it prints the line ``banner``.

    Its stdin and stdout stay pipes of ``executor.process`` (text), for processes that
    take commands and print results after the banner; stderr is this process's (pytest
    captures it per test; mirakuru watches every stream it is given a handle for, so
    it cannot be discarded). A process that exits before printing the banner is noticed
    when ``timeout`` runs out.
    """
    return OutputExecutor(
        list(command),
        banner=f"(?m)^{banner}$",
        envvars={**BASE_ENVIRONMENT, **(environment or {})},
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None,
        timeout=timeout,
    )


class ServiceProcess:
    """An x0 service started by :func:`service`: its port, its executor, its log file."""

    def __init__(self, executor: HTTPExecutor, port: int, log: Path | None) -> None:
        self.executor = executor
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        """Its HTTP base URL (``/metrics``, ``/health/*``; the API for the gateway)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def process(self) -> subprocess.Popen[str]:
        """The running process (to send it a signal)."""
        assert self.executor.process is not None, "not running"
        return self.executor.process


@contextmanager
def service(
    module: str,
    *,
    environment: Mapping[str, str],
    port_variable: str,
    timeout: float = 90.0,
    log: Path | None = None,
) -> Iterator[ServiceProcess]:
    """Run ``python -m module`` on a free port until its ``/health/ready`` says 200.

    The port is passed in ``port_variable``. With ``log``, the process's stdout and
    stderr (its JSON log lines) are appended to that file, for tests that read them and
    for a post-mortem; otherwise they are discarded. Stops the process on exit.
    """
    port = free_port()
    with ExitStack() as stack:
        output = stack.enter_context(log.open("a")) if log is not None else subprocess.DEVNULL
        executor = http_executor(
            python_command(module),
            ready_url=f"http://127.0.0.1:{port}{READY_PATH}",
            environment={**environment, port_variable: str(port)},
            output=output,
            timeout=timeout,
        )
        with executor:
            yield ServiceProcess(executor, port, log)


@contextmanager
def service_process(
    module: str,
    *,
    environment: Mapping[str, str],
    port_variable: str,
    timeout: float = 90.0,
    log: Path | None = None,
) -> Iterator[int]:
    """:func:`service`, yielding only the port."""
    with service(
        module, environment=environment, port_variable=port_variable, timeout=timeout, log=log
    ) as running:
        yield running.port


@contextmanager
def printing_process(
    module: str, *arguments: str, environment: Mapping[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -m module arguments...`` until it prints ``ready``; yields the process
    (its stdin and stdout are text pipes) and stops it afterwards."""
    with printing_executor(python_command(module, *arguments), environment=environment) as executor:
        assert executor.process is not None
        yield executor.process


def stop_process(process: subprocess.Popen[Any], timeout: float = 30.0) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL if it has not exited after ``timeout`` s.

    For a process started by plain ``subprocess`` (``tests/deploy`` starts Alertmanager
    so); what the executors above start, they stop themselves.
    """
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
