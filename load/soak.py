"""The soak (issue 15): a moderate mix for a long time, watching every process's memory
and open file descriptors for growth.

    deploy/local-stack/test-stack.sh run python -m load.soak [--minutes 30]
    (make soak SOAK_MINUTES=30)

Inside ``test-stack.sh run``, as ``load.chaos``: its own services (the three workers
and two gateway replicas, ``load.chaos.System``), Locust's ``soak`` profile over both
gateways for the whole time, and every ``SAMPLE_S`` seconds the resident memory (RSS)
and open file descriptors of each service, of Locust, and of Kafka, PostgreSQL (the
postmaster and its backends together) and Redis.

Growth is the mean of the last ``TAIL`` of the run over the mean of the first ``TAIL``
after the warm-up (the first ``WARM_UP`` of the run, at least 60 s): more than
``MAX_GROWTH`` (10%) fails the soak — for descriptors, only when that is also more than
``MIN_FD_GROWTH`` descriptors (10% of 20 is two: noise, not a leak).

Writes ``load/results/<time>-soak/``: ``resources.csv`` (time, process, RSS bytes, open
fds), ``resources.png`` (both over time, per process), ``soak.json`` (growth per process
and the verdict) and Locust's files. Exit status: 0 when nothing grew past the bound, 1
otherwise, 2 when the run could not be made.
"""

# A command-line tool: it prints its progress and verdict.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from contextlib import ExitStack, suppress
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only, no display

import matplotlib.pyplot as plt
import psutil

from load import ci
from load.chaos import REPO_ROOT, System, listener, locust
from load.plan import PlanError
from load.run import RESULTS_ROOT, RunError, preflight, results_folder

SAMPLE_S = 10.0
WARM_UP = 0.2
MIN_WARM_UP_S = 60.0
TAIL = 0.15
MAX_GROWTH = 0.10
MIN_FD_GROWTH = 5


def _stack_processes() -> dict[str, psutil.Process]:
    processes = {}
    for name, variable in (
        ("kafka", "X0_STACK_KAFKA_PORT"),
        ("postgres", "X0_STACK_PG_PORT"),
        ("redis", "X0_STACK_REDIS_PORT"),
    ):
        if os.environ.get(variable):
            with suppress(RunError, psutil.Error):
                processes[name] = listener(int(os.environ[variable]))
    return processes


def _sample(process: psutil.Process, *, with_children: bool) -> tuple[int, int]:
    """(RSS bytes, open fds) of the process (and its children)."""
    members = [process, *(process.children(recursive=True) if with_children else [])]
    rss = fds = 0
    for member in members:
        with suppress(psutil.Error):
            rss += member.memory_info().rss
            fds += member.num_fds()
    return rss, fds


def growth(samples: list[tuple[float, int, int]], start: float, end: float) -> dict[str, float]:
    """Relative growth of RSS and fds: the mean of the run's last TAIL over the mean of
    the first TAIL after the warm-up (``start``..``end`` is the whole run)."""
    warm = start + max(MIN_WARM_UP_S, WARM_UP * (end - start))
    span = (end - warm) * TAIL
    early = [s for s in samples if warm <= s[0] < warm + span]
    late = [s for s in samples if s[0] >= end - span]
    if not early or not late:
        return {"rss": 0.0, "fds": 0.0, "fds_added": 0.0}

    def mean(rows: list[tuple[float, int, int]], index: int) -> float:
        return sum(r[index] for r in rows) / len(rows)

    rss0, fds0 = mean(early, 1), mean(early, 2)
    rss1, fds1 = mean(late, 1), mean(late, 2)
    return {
        "rss": (rss1 - rss0) / rss0 if rss0 else 0.0,
        "fds": (fds1 - fds0) / fds0 if fds0 else 0.0,
        "fds_added": fds1 - fds0,
    }


def grew(figures: dict[str, float]) -> list[str]:
    """What grew past the bound."""
    out = []
    if figures["rss"] > MAX_GROWTH:
        out.append(f"RSS +{figures['rss']:.0%}")
    if figures["fds"] > MAX_GROWTH and figures["fds_added"] > MIN_FD_GROWTH:
        out.append(f"open fds +{figures['fds']:.0%} ({figures['fds_added']:+.0f})")
    return out


def chart(series: dict[str, list[tuple[float, int, int]]], start: float, out: Path) -> Path:
    figure, (memory, descriptors) = plt.subplots(2, 1, figsize=(11, 8), sharex=True)
    for name, samples in sorted(series.items()):
        minutes = [(s[0] - start) / 60 for s in samples]
        memory.plot(minutes, [s[1] / 2**20 for s in samples], label=name)
        descriptors.plot(minutes, [s[2] for s in samples], label=name)
    memory.set_ylabel("RSS (MiB)")
    memory.set_yscale("log")
    descriptors.set_ylabel("open file descriptors")
    descriptors.set_xlabel("minutes")
    memory.legend(fontsize="small", ncol=3)
    memory.set_title("soak: memory and descriptors per process")
    for axes in (memory, descriptors):
        axes.grid(visible=True, alpha=0.3)
    path = out / "resources.png"
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def run(minutes: float, users: int | None, out: Path) -> int:
    stack_dir = Path(os.environ.get("X0_STACK_DIR") or REPO_ROOT / ".stack" / "test")
    system = System(stack_dir, out / "services")
    series: dict[str, list[tuple[float, int, int]]] = {}
    with ExitStack() as stack:
        stack.callback(system.stop)
        system.start()
        ci.provision_key(stack_dir)
        for gateway in system.gateways():
            preflight(gateway)
        watched: dict[str, tuple[psutil.Process, bool]] = {
            name: (psutil.Process(executor.process.pid), False)
            for name, executor in system.executors.items()
            if executor.process is not None
        }
        watched |= {n: (p, n == "postgres") for n, p in _stack_processes().items()}
        process = stack.enter_context(
            locust(
                system.gateways(),
                users,
                os.urandom(4).hex(),
                out,
                profile="soak",
                duration=f"{minutes * 60 + 60:.0f}",
            )
        )
        watched["locust"] = (psutil.Process(process.pid), True)
        start = time.time()
        end = start + minutes * 60
        print(f"soak: {minutes:g} min, sampling {', '.join(watched)} every {SAMPLE_S:g} s")
        with (out / "resources.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["time", "process", "rss_bytes", "open_fds"])
            while time.time() < end:
                if process.poll() is not None:
                    msg = f"Locust exited early ({process.returncode}); see {out}"
                    raise RunError(msg)
                now = time.time()
                for name, (member, with_children) in watched.items():
                    rss, fds = _sample(member, with_children=with_children)
                    series.setdefault(name, []).append((now, rss, fds))
                    writer.writerow([f"{now:.1f}", name, rss, fds])
                f.flush()
                time.sleep(SAMPLE_S)
    findings = {}
    report = {}
    for name, samples in series.items():
        figures = growth(samples, start, end)
        report[name] = figures
        if problems := grew(figures):
            findings[name] = problems
    chart(series, start, out)
    (out / "soak.json").write_text(
        json.dumps({"minutes": minutes, "growth": report, "grew": findings}, indent=2)
    )
    print(f"{'process':<12} {'RSS growth':>11} {'fds growth':>11}")
    for name, figures in sorted(report.items()):
        print(f"{name:<12} {figures['rss']:>+11.1%} {figures['fds_added']:>+11.0f}")
    print(f"results: {out} (resources.png)")
    if findings:
        for name, problems in findings.items():
            print(f"soak: {name} grew: {', '.join(problems)}")
        return 1
    print(f"soak: no process grew more than {MAX_GROWTH:.0%} after the warm-up")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.soak", description=__doc__.split("\n\n", 1)[0]
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="run time (default 30)")
    parser.add_argument("--users", type=int, help="Locust users (default: the soak profile's)")
    args = parser.parse_args(argv)
    if not ci.stack_ready():
        return 2
    try:
        return run(args.minutes, args.users, results_folder(RESULTS_ROOT, "soak"))
    except (PlanError, RunError) as error:
        print(f"soak: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
