"""What every section shares: worker processes, closed-loop load, percentiles."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from x0_common.testing.processes import stop_process


@contextmanager
def worker_process(*module_and_arguments: str) -> Iterator[subprocess.Popen[str]]:
    """Run ``python -m ...`` until it prints ``ready``; kill it afterwards."""
    process = subprocess.Popen(
        [sys.executable, "-m", *module_and_arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if line.strip() != "ready":
            msg = f"{module_and_arguments[0]} did not start"
            raise RuntimeError(msg)
        yield process
    finally:
        stop_process(process, timeout=20)
        if process.stdout is not None:
            process.stdout.close()


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
