"""What every section shares: worker processes, closed-loop load, percentiles."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from x0_common.testing.processes import printing_process


@contextmanager
def worker_process(*module_and_arguments: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -m ...`` until it prints ``ready``; stop it afterwards. Its log lines
    (stderr) would land in the benchmark's table: only warnings and errors pass."""
    with printing_process(
        *module_and_arguments, environment={"X0_LOG_LEVEL": "WARNING"}
    ) as process:
        yield process


async def closed_loop(
    call: Callable[[], Awaitable[object]], *, concurrency: int, total: int
) -> list[float]:
    """``concurrency`` callers each repeat ``call`` until ``total`` calls; latencies in s."""
    latencies: list[float] = []
    remaining = total

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(caller() for _ in range(concurrency)))
    return latencies


def percentile(samples: list[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.5 for p50, 0.99 for p99)."""
    if fraction == 0.5:
        return statistics.median(samples)
    return statistics.quantiles(samples, n=100, method="inclusive")[round(fraction * 100) - 1]


@contextmanager
def profiled(processes: dict[str, int]) -> Iterator[None]:
    """With ``X0_BENCH_PROFILE=<folder>``, py-spy records each process (name: pid) while
    the block runs and writes ``<folder>/<name>.svg`` (a flame graph); otherwise nothing.
    py-spy attaches with ptrace (root, or ``kernel.yama.ptrace_scope`` 0); ``X0_BENCH_PYSPY``
    names its executable when it is not on the PATH (``uv tool install py-spy``)."""
    folder = os.environ.get("X0_BENCH_PROFILE")
    if not folder:
        yield
        return
    executable = os.environ.get("X0_BENCH_PYSPY") or shutil.which("py-spy") or "py-spy"
    Path(folder).mkdir(parents=True, exist_ok=True)
    recorders = [
        subprocess.Popen(
            [
                executable,
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--nonblocking",
                "--output",
                str(Path(folder) / f"{name}.svg"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name, pid in processes.items()
    ]
    time.sleep(1)  # py-spy attaches before the measured calls start
    try:
        yield
    finally:
        for recorder in recorders:
            recorder.send_signal(signal.SIGINT)  # py-spy writes the flame graph on SIGINT
        for recorder in recorders:
            recorder.wait(timeout=60)
