"""Single calls at concurrency 1 on several paths, in alternating rounds, with the CPU
time every process involved spends per call.

Used by the crypto section for the single-operation figure and the account of its
gap. Each path is a coroutine function making one call; rounds alternate between the
paths so that drift in the machine's speed falls on all of them alike. Around each
path's part of a round, the user+system CPU time of each named process (this one, the
services, the broker, Redis, PostgreSQL with its backends) is read from ``/proc``
(psutil): CPU ms per call says which process spends what, which a wall-clock figure
on 2 shared cores cannot.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import psutil

from bench.harness import closed_loop, percentile

Call = Callable[[], Awaitable[object]]


@dataclass
class PathSamples:
    """Latencies (s) of one path and the CPU seconds each process spent during them."""

    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)

    def ms(self, fraction: float) -> float:
        """The ``fraction`` quantile in ms."""
        return percentile(self.latencies, fraction) * 1000

    def cpu_ms_per_call(self, process: str) -> float:
        """CPU ms that ``process`` spent per call of this path."""
        return self.cpu.get(process, 0.0) * 1000 / len(self.latencies)


def _cpu_seconds(process: psutil.Process, *, with_children: bool) -> float:
    members = [process, *(process.children(recursive=True) if with_children else [])]
    total = 0.0
    for member in members:
        with contextlib.suppress(psutil.Error):
            times = member.cpu_times()
            total += times.user + times.system
    return total


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` here (the broker, Redis, PostgreSQL)."""
    with contextlib.suppress(psutil.Error):
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == port:
                return connection.pid
    return None


class CpuMeter:
    """CPU seconds of named processes; PostgreSQL's counts its backends too."""

    def __init__(self, pids: Mapping[str, int | None], with_children: set[str]) -> None:
        self._processes = {
            name: psutil.Process(pid) for name, pid in pids.items() if pid is not None
        }
        self._with_children = with_children

    @property
    def names(self) -> list[str]:
        """The processes measured."""
        return list(self._processes)

    def read(self) -> dict[str, float]:
        """Each process's CPU seconds so far."""
        return {
            name: _cpu_seconds(process, with_children=name in self._with_children)
            for name, process in self._processes.items()
        }


async def rounds(
    paths: Mapping[str, Call], meter: CpuMeter, *, calls: int, rounds: int, warmup: int
) -> dict[str, PathSamples]:
    """``calls`` calls of every path at concurrency 1, in ``rounds`` alternating rounds."""
    samples = {name: PathSamples() for name in paths}
    for call in paths.values():
        await closed_loop(call, concurrency=1, total=warmup)
    for _ in range(rounds):
        for name, call in paths.items():
            before = meter.read()
            samples[name].latencies += await closed_loop(call, concurrency=1, total=calls // rounds)
            after = meter.read()
            for process, seconds in after.items():
                spent = seconds - before.get(process, seconds)
                samples[name].cpu[process] = samples[name].cpu.get(process, 0.0) + spent
    return samples


def print_table(samples: Mapping[str, PathSamples], processes: list[str]) -> None:
    """p50 / p99 and CPU ms per call by process, one row per path."""
    header = f"  {'path':<16} {'p50 ms':>8} {'p99 ms':>8}  " + " ".join(
        f"{name:>9}" for name in processes
    )
    print(header + "   (CPU ms per call)", flush=True)
    for name, path in samples.items():
        cpu = " ".join(f"{path.cpu_ms_per_call(process):9.3f}" for process in processes)
        print(f"  {name:<16} {path.ms(0.5):8.3f} {path.ms(0.99):8.3f}  {cpu}", flush=True)
