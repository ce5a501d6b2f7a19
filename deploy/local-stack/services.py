"""The x0 services as background processes on this machine (no Docker), beside the stack
that stack.sh runs. Run by services.sh with the workspace's Python (make up/down/status).

    services.sh up       start every service that is not running, each once ready
    services.sh down     stop them, the gateway first (SIGTERM, then SIGKILL after 20 s)
    services.sh status   one line per service; exit 0 only if all run and answer

Beside the four x0 services it runs Prometheus (127.0.0.1:9090, deploy/prometheus),
Alertmanager (127.0.0.1:9095, deploy/alertmanager) and the PostgreSQL and Redis
exporters, from the Debian packages stack.sh installs, so the alert rules are live
wherever the system runs; and Jaeger v2 (deploy/jaeger/jaeger.yaml: in-memory
storage, OTLP on 127.0.0.1:4317/4318, UI and query API on 127.0.0.1:16686), built once
from the Go module proxy by jaeger.sh into the stack's cache. The x0 services export
their spans to it (OTEL_EXPORTER_OTLP_ENDPOINT, unless the caller set one).

Logs (JSON lines) go to .stack/services/<name>.log, pids to <name>.pid (the pid and
the process's start time, so a reused pid is never taken for it).

Each service is started by the executors of x0_common.testing.processes (mirakuru), as
in the tests and benchmarks: readiness is the same HTTP check, a process that exits
during start-up fails `up` at once. What mirakuru leaves to its caller is done here:
the processes outlive this command, and `down`/`status` find them by pid file (psutil).
"""

# A command-line tool: it prints its progress for the person who ran make up.
# ruff: noqa: T201

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psutil
from mirakuru.base import ENV_UUID
from mirakuru.exceptions import AlreadyRunning, ProcessExitedWithError, TimeoutExpired

from x0_common.settings import PostgresSettings, RedisSettings
from x0_common.testing.credentials import CREDENTIALS_VARIABLE
from x0_common.testing.processes import READY_PATH, answers_ok, http_executor, python_command

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("X0_STACK_DIR") or REPO_ROOT / ".stack")
RUN_DIR = STATE_DIR / "services"
# stack.sh's password files: each x0 service connects as its own PostgreSQL role and
# Redis user (http_executor picks them from here), the exporters as `monitor`.
CREDENTIALS = STATE_DIR / "credentials"
POSTGRES = urlsplit(os.environ.get("X0_POSTGRES__DSN") or PostgresSettings().dsn.get_secret_value())
REDIS = urlsplit(os.environ.get("X0_REDIS__URL") or RedisSettings().url.get_secret_value())
START_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# The ports deploy/prometheus/prometheus.yml scrapes and alerts to.
PROMETHEUS_ADDRESS = "127.0.0.1:9090"
ALERTMANAGER_ADDRESS = "127.0.0.1:9095"
# Jaeger v2: jaeger.sh prints the cached binary's path (building it when missing).
JAEGER_SCRIPT = REPO_ROOT / "deploy" / "local-stack" / "jaeger.sh"
JAEGER_CONFIG = REPO_ROOT / "deploy" / "jaeger" / "jaeger.yaml"
JAEGER_UI = "http://127.0.0.1:16686"
OTLP_ENDPOINT = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "http://127.0.0.1:4318"
PORTS = {
    name: os.environ.get(variable) or default
    for name, variable, default in (
        ("gateway", "X0_GATEWAY_PORT", "8000"),
        ("crypto", "X0_CRYPTO_PORT", "8001"),
        ("rag", "X0_RAG_PORT", "8002"),
        ("telemetry", "X0_TELEMETRY_PORT", "8003"),
    )
}


@dataclass(frozen=True)
class Service:
    """One background process: how to start it and when it is ready."""

    name: str
    command: list[str]
    ready_url: str
    environment: dict[str, str] = field(default_factory=dict)

    @property
    def pid_file(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def log(self) -> Path:
        return RUN_DIR / f"{self.name}.log"


def x0_service(name: str) -> Service:
    port = PORTS[name]
    return Service(
        name,
        python_command(f"x0_{name}"),
        f"http://127.0.0.1:{port}{READY_PATH}",
        {
            f"X0_{name.upper()}_PORT": port,
            CREDENTIALS_VARIABLE: str(CREDENTIALS),
            "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
        },
    )


# Jaeger first, so the services' first spans have somewhere to go; then the x0 services
# (the gateway last of them), then what watches them. `down` goes in reverse order.
SERVICES = [
    Service(
        "jaeger",
        # The binary's path comes from jaeger.sh at `up` (jaeger_built()).
        ["jaeger", f"--config={JAEGER_CONFIG}"],
        "http://127.0.0.1:13133/status",
    ),
    x0_service("crypto"),
    x0_service("rag"),
    x0_service("telemetry"),
    x0_service("gateway"),
    Service(
        "alertmanager",
        [
            "prometheus-alertmanager",
            f"--config.file={REPO_ROOT}/deploy/alertmanager/alertmanager.yml",
            f"--storage.path={STATE_DIR}/alertmanager",
            f"--web.listen-address={ALERTMANAGER_ADDRESS}",
            "--cluster.listen-address=",  # turns off clustering (and its port 9094)
        ],
        f"http://{ALERTMANAGER_ADDRESS}/-/ready",
    ),
    # The stack's exporters, on the ports deploy/prometheus/prometheus.yml scrapes.
    Service(
        "postgres-exporter",
        ["prometheus-postgres-exporter", "--web.listen-address=127.0.0.1:9187"],
        "http://127.0.0.1:9187/metrics",
        {
            "DATA_SOURCE_URI": f"{POSTGRES.hostname}:{POSTGRES.port or 5432}{POSTGRES.path}"
            "?sslmode=disable",
            "DATA_SOURCE_USER": "monitor",
            "DATA_SOURCE_PASS_FILE": str(CREDENTIALS / "postgres-monitor.password"),
        },
    ),
    Service(
        "redis-exporter",
        [
            "prometheus-redis-exporter",
            f"--redis.addr=redis://{REDIS.hostname}:{REDIS.port or 6379}",
            "--redis.user=monitor",
            f"--redis.password-file={CREDENTIALS / 'redis-monitor.json'}",
            "--web.listen-address=127.0.0.1:9121",
        ],
        "http://127.0.0.1:9121/metrics",
    ),
    Service(
        "prometheus",
        [
            "prometheus",
            f"--config.file={REPO_ROOT}/deploy/prometheus/prometheus.yml",
            f"--storage.tsdb.path={STATE_DIR}/prometheus",
            f"--web.listen-address={PROMETHEUS_ADDRESS}",
        ],
        f"http://{PROMETHEUS_ADDRESS}/-/ready",
    ),
]


class ServicesError(Exception):
    """A service could not be started."""


def running(service: Service) -> psutil.Process | None:
    """The service's process, if its pid file names one that still runs."""
    try:
        fields = service.pid_file.read_text().split()
        process = psutil.Process(int(fields[0]))
        # A pid file without a start time was written by the shell script before this one.
        if len(fields) > 1 and abs(process.create_time() - float(fields[1])) > 1:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
    except (OSError, ValueError, IndexError, psutil.Error):
        return None
    return process


def jaeger_built(service: Service) -> Service:
    """The Jaeger service with the cached binary's path (jaeger.sh builds it if missing,
    printing its progress)."""
    built = subprocess.run(  # noqa: S603 - our own script
        [str(JAEGER_SCRIPT)], stdout=subprocess.PIPE, text=True, check=False
    )
    if built.returncode != 0:
        msg = f"{service.name}: {JAEGER_SCRIPT} failed (exit {built.returncode})"
        raise ServicesError(msg)
    return dataclasses.replace(service, command=[built.stdout.strip(), *service.command[1:]])


def start(service: Service) -> None:
    if (process := running(service)) is not None:
        print(f"{service.name}: already running (pid {process.pid})")
        return
    if service.name == "jaeger":
        service = jaeger_built(service)
    if shutil.which(service.command[0]) is None:
        msg = f"{service.name}: {service.command[0]} is not installed (stack.sh up installs it)"
        raise ServicesError(msg)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    # `env -u` drops the marker mirakuru gives its processes: these outlive this command,
    # and no exit hook of any mirakuru user may take them for its own leftovers.
    command = ["env", "-u", ENV_UUID, *service.command]
    with service.log.open("a") as log:
        executor = http_executor(
            command,
            ready_url=service.ready_url,
            environment=service.environment,
            output=log,
            timeout=START_TIMEOUT,
        )
        try:
            executor.start()
        except (AlreadyRunning, ProcessExitedWithError, TimeoutExpired) as error:
            tail = "".join(service.log.read_text(errors="replace").splitlines(True)[-30:])
            msg = f"{service.name}: {error} (log: {service.log})\n{tail}"
            raise ServicesError(msg) from error
    assert executor.process is not None
    pid = executor.process.pid
    service.pid_file.write_text(f"{pid} {psutil.Process(pid).create_time()}\n")
    # Left running on purpose: without its process the executor neither stops nor
    # kills it when it is collected.
    executor.process = None
    print(f"{service.name}: ready (pid {pid}, {service.ready_url})")


def stop(service: Service) -> None:
    process = running(service)
    if process is None:
        service.pid_file.unlink(missing_ok=True)
        print(f"{service.name}: not running")
        return
    # Started in a session of its own: the whole group goes (a service's children too).
    group = os.getpgid(process.pid) == process.pid
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        except (ProcessLookupError, psutil.NoSuchProcess):
            break
        _, alive = psutil.wait_procs([process], timeout=STOP_TIMEOUT)
        if not alive:
            break
    service.pid_file.unlink(missing_ok=True)
    print(f"{service.name}: stopped")


def status() -> int:
    code = 0
    for service in SERVICES:
        process = running(service)
        if process is None:
            print(f"{service.name:<18} stopped")
            code = 1
            continue
        ready = answers_ok(service.ready_url)
        state = "running" if ready else "not ready"
        print(f"{service.name:<18} {state:<9} pid {process.pid:<8} {service.ready_url}")
        code = code or (0 if ready else 1)
    return code


def main(command: str) -> int:
    if command == "up":
        try:
            for service in SERVICES:
                start(service)
        except ServicesError as error:
            print(f"services.sh: error: {error}", file=sys.stderr)
            return 1
        print(f"gateway: http://127.0.0.1:{PORTS['gateway']}/docs")
        print(
            f"prometheus: http://{PROMETHEUS_ADDRESS}/alerts (rules from deploy/prometheus/rules)"
        )
        print(f"jaeger: {JAEGER_UI} (traces of every service, kept in memory)")
        return 0
    if command == "down":
        # Gateway first: it stops taking requests before the workers go.
        for service in reversed(SERVICES):
            stop(service)
        return 0
    if command == "status":
        return status()
    print(__doc__.split("\n\n")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
