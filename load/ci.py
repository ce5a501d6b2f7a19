"""``make load-ci``: the short load run with the CI SLOs, on services of its own.

Run inside ``deploy/local-stack/test-stack.sh run`` (as ``make test`` is): that starts a
fresh Kafka, PostgreSQL and Redis (``.stack/test``, one run at a time) and sets their
``X0_*`` variables. This script then starts, on free ports, what the run needs:

- the crypto, rag and telemetry workers and a gateway (``python -m x0_<service>``), with
  the executors of ``x0_common.testing.processes``, as the tests and ``make up`` do;
- a Prometheus scraping them every 5 s (when the ``prometheus`` binary is installed:
  ``stack.sh up`` installs it), for the service-side chart;

makes the development admin key (``x0-gateway-admin dev-key``, into
``$X0_STACK_DIR/dev-admin-key``) unless ``X0_API_KEY`` is set, runs ``load.run`` with
the ``ci`` profile and SLOs, and stops everything. The services'
logs go to ``services/`` in the run's results folder. Exit status as ``load.run``'s.
"""

# A command-line tool: it prints its progress for the person who ran make load-ci.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path

from mirakuru import HTTPExecutor

from load import auth, prometheus
from load.plan import PlanError, resolve
from load.run import RESULTS_ROOT, RunError, execute, results_folder
from x0_common.testing.processes import READY_PATH, free_port, http_executor, python_command
from x0_gateway.settings import GatewaySettings

START_TIMEOUT_S = 120.0
SCRAPE_INTERVAL = "5s"
RATE_WINDOW = "20s"  # four scrapes


def _services(
    stack_dir: Path, logs: Path, extra: Mapping[str, Mapping[str, str]]
) -> dict[str, tuple[list[str], str, dict[str, str]]]:
    """name -> (command, readiness URL, environment), each on a free port."""
    services = {}
    for name in ("crypto", "rag", "telemetry", "gateway"):
        port = str(free_port())
        environment = {f"X0_{name.upper()}_PORT": port, **extra.get(name, {})}
        if name == "rag":
            environment["X0_RAG_SNAPSHOT_DIR"] = str(stack_dir / "load-ci-rag-snapshots")
        if name == "telemetry":
            # Lag figures often enough for a one-minute chart.
            environment["X0_TELEMETRY_LAG_INTERVAL_SECONDS"] = "2"
        services[name] = (
            python_command(f"x0_{name}"),
            f"http://127.0.0.1:{port}{READY_PATH}",
            environment,
        )
    if shutil.which("prometheus") is not None:
        port = str(free_port())
        config = logs / "prometheus.yml"
        # host:port of each service's /metrics: the API's port, but the gateway's own
        # metrics port where it has one (X0_GATEWAY_METRICS_PORT).
        targets = {name: url.split("/")[2] for name, (_, url, _) in services.items()}
        if "metrics_port" in GatewaySettings.model_fields:
            metrics_port = str(free_port())
            services["gateway"][2]["X0_GATEWAY_METRICS_PORT"] = metrics_port
            targets["gateway"] = f"127.0.0.1:{metrics_port}"
        config.write_text(
            json.dumps(
                {
                    "global": {"scrape_interval": SCRAPE_INTERVAL, "scrape_timeout": "4s"},
                    "scrape_configs": [
                        {"job_name": name, "static_configs": [{"targets": [target]}]}
                        for name, target in targets.items()
                    ],
                },
                indent=2,
            )
        )
        services["prometheus"] = (
            [
                "prometheus",
                f"--config.file={config}",
                f"--storage.tsdb.path={logs / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            f"http://127.0.0.1:{port}/-/ready",
            {},
        )
    return services


@contextmanager
def running_services(
    stack_dir: Path, logs: Path, extra: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[dict[str, str]]:
    """Start every service at once, wait until all are ready; yields name -> base URL.
    ``extra`` adds variables per service. Stops them (SIGTERM, then SIGKILL) on exit."""
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        executors: dict[str, HTTPExecutor] = {}
        for name, (command, ready_url, environment) in _services(
            stack_dir, logs, extra or {}
        ).items():
            output = stack.enter_context((logs / f"{name}.log").open("a"))
            executors[name] = http_executor(
                command,
                ready_url=ready_url,
                environment=environment,
                output=output,
                timeout=START_TIMEOUT_S,
            )
        for executor in executors.values():
            stack.callback(executor.stop)
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(executors)) as pool:
            failures = {
                name: error
                for name, error in zip(executors, pool.map(_start, executors.values()), strict=True)
                if error is not None
            }
        if failures:
            detail = "; ".join(f"{name}: {error}" for name, error in failures.items())
            msg = f"services did not start ({detail}); logs in {logs}"
            raise RunError(msg)
        print(f"load-ci: {', '.join(executors)} ready in {time.monotonic() - started:.0f} s")
        yield {name: f"{e.url.scheme}://{e.url.netloc}" for name, e in executors.items()}


def _start(executor: HTTPExecutor) -> Exception | None:
    try:
        executor.start()
    except Exception as error:  # noqa: BLE001 - reported with the service's name
        return error
    return None


def provision_key(stack_dir: Path) -> None:
    """The development admin key in ``stack_dir/dev-admin-key``, as ``make up`` makes one,
    unless ``X0_API_KEY`` is given or this gateway has no API keys (before #7)."""
    if os.environ.get("X0_API_KEY") or importlib.util.find_spec("x0_gateway.admin_cli") is None:
        return
    file = stack_dir / "dev-admin-key"
    command = [*python_command("x0_gateway.admin_cli"), "dev-key", "--file", str(file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        msg = f"x0-gateway-admin dev-key failed: {done.stderr.strip() or done.stdout.strip()}"
        raise RunError(msg)
    os.environ["X0_API_KEY_FILE"] = str(file)


def stack_ready() -> bool:
    """True inside ``test-stack.sh run`` (or wherever the stack's variables are set)."""
    if os.environ.get("X0_KAFKA__BOOTSTRAP_SERVERS"):
        return True
    print(
        "load: error: no X0_KAFKA__BOOTSTRAP_SERVERS: run it inside "
        "deploy/local-stack/test-stack.sh run (as make load-ci does)",
        file=sys.stderr,
    )
    return False


@contextmanager
def own_system(out: Path, extra: Mapping[str, Mapping[str, str]] | None = None) -> Iterator[str]:
    """The services, a key and a Prometheus on the stack of the environment; yields the
    gateway's URL. Logs go to ``out/services``."""
    stack_dir = Path(os.environ.get("X0_STACK_DIR") or auth.REPO_ROOT / ".stack" / "test")
    with running_services(stack_dir, out / "services", extra) as urls:
        provision_key(stack_dir)
        if "prometheus" in urls:
            os.environ["X0_PROMETHEUS_URL"] = urls["prometheus"]
            os.environ[prometheus.WINDOW_VARIABLE] = RATE_WINDOW
        yield urls["gateway"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m load.ci", description=__doc__.split("\n\n", 1)[0]
    )
    parser.add_argument("--duration", help="run time (default: the ci profile's)")
    parser.add_argument("--users", type=int, help="users (default: the ci profile's)")
    args = parser.parse_args(argv)
    if not stack_ready():
        return 2
    try:
        plan = resolve("ci", users=args.users, duration=args.duration)
        out = results_folder(RESULTS_ROOT, "ci")
        with own_system(out) as gateway:
            code, _ = execute(replace(plan, host=gateway), "ci", out)
    except (PlanError, RunError) as error:
        print(f"load-ci: error: {error}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
