"""What every section shares: worker processes, closed-loop load, percentiles."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

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
