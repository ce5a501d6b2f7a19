"""The whole system as it runs in production, on one machine, for the tests in this folder.

- Every service is a real process (``python -m x0_<service>``): the gateway on its
  HTTP port, the crypto, RAG and telemetry workers in consumer groups of this run
  (started at the end of their topics, so earlier runs' messages are not replayed).
- Each exports its spans over OTLP/HTTP to a receiver this session starts
  (:class:`~x0_common.testing.otlp.OtlpReceiver`) and writes its JSON log lines to a
  file of its own.
- The real Prometheus (``/usr/bin/prometheus``, Debian's ``prometheus`` package)
  scrapes all of them with the scrape configuration of ``deploy/prometheus/``.
- The fixtures are package-scoped (this folder has an ``__init__.py``), so these
  processes stop when the folder's tests end: they consume the shared topics in
  groups of their own and would also answer other folders' requests.
- They use a PostgreSQL database of this run's own: in a whole ``make test`` the e2e
  workers are still running (session fixtures) in groups of their own on the same
  topics, and would otherwise apply the same messages to the same tables first (a
  RAG writer skips a message another writer recorded as applied).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import yaml
from mirakuru import HTTPExecutor
from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired

from x0_common.events import crypto, rag, telemetry
from x0_common.testing.kafka import start_groups_at_end
from x0_common.testing.otlp import OtlpReceiver
from x0_common.testing.processes import free_port, http_executor, service_process
from x0_common.testing.stack import StackEndpoints
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_BINARY = Path(os.environ.get("X0_PROMETHEUS_BINARY", "/usr/bin/prometheus"))
# The ports deploy/ and services.sh give the services; the committed scrape config
# names these, the test rewrites them to the ports its own processes got. The gateway
# serves its metrics on a port of their own (X0_GATEWAY_METRICS_PORT), not its API's.
DEFAULT_PORTS = {
    9100: "gateway",
    8001: "crypto",
    8002: "rag",
    8003: "telemetry",
    9090: "prometheus",  # Prometheus scraping itself: rewritten to the test's instance
}
SCRAPE_INTERVAL = "1s"
T = TypeVar("T")
TELEMETRY_MAX_NODE_SERIES = 40


@dataclass(frozen=True)
class RunningService:
    """A service process of this session: where it listens and where its log goes."""

    name: str
    port: int
    log: Path
    # Where Prometheus scrapes it, when not on ``port`` (the gateway's metrics port).
    metrics_port: int = 0

    @property
    def scraped_port(self) -> int:
        """The port its ``/metrics`` is served on."""
        return self.metrics_port or self.port

    @property
    def url(self) -> str:
        """Its HTTP base URL (``/metrics``, ``/health/*``; the API for the gateway)."""
        return f"http://127.0.0.1:{self.port}"

    def log_records(self) -> list[dict[str, Any]]:
        """Every JSON object line written so far (lines from libraries that print plain
        text, such as a model download's progress, are not log records and are left out)."""
        records = []
        for line in self.log.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


@pytest.fixture(scope="package")
def run_id() -> str:
    """Names this session's consumer groups, replica ids and reply topic."""
    return uuid.uuid4().hex[:8]


@pytest.fixture(scope="package")
def system_environment(stack: StackEndpoints, run_id: str) -> Iterator[dict[str, str]]:
    """The stack's ``X0_*`` variables, with a PostgreSQL database created for this run
    (and dropped after it)."""
    database = f"x0_system_{run_id}"
    dsn = urllib.parse.urlsplit(stack.postgres_dsn)._replace(path=f"/{database}").geturl()
    _run_sql(stack.postgres_dsn, f'CREATE DATABASE "{database}"')
    try:
        # Each service starts as its own role (x0_common.testing.credentials), which
        # may not create its schema: made here, as stack.sh makes them in database x0.
        _in_thread(stack.create_service_schemas(dsn))
        yield {**stack.environment(), "X0_POSTGRES__DSN": dsn}
    finally:
        _run_sql(stack.postgres_dsn, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _run_sql(dsn: str, statement: str) -> None:
    async def run() -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(statement)
        finally:
            await connection.close()

    _in_thread(run())


def _in_thread(work: Coroutine[Any, Any, T]) -> T:
    # A thread of its own: the session's event loop may be running already.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, work).result(timeout=60)


@pytest.fixture(scope="package")
def otlp() -> Iterator[OtlpReceiver]:
    """The OTLP/HTTP receiver every service of the session exports its spans to."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture(scope="package")
def service_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder holding one ``<service>.log`` per process (kept for a post-mortem)."""
    return tmp_path_factory.mktemp("service-logs")


@pytest.fixture(scope="package")
def otlp_endpoint(otlp: OtlpReceiver) -> str:
    """Where the services export their spans (``OTEL_EXPORTER_OTLP_ENDPOINT``): the
    session's receiver here; Jaeger in tests/jaeger, which overrides this fixture."""
    return otlp.endpoint


@pytest.fixture(scope="package")
def start_service(
    system_environment: dict[str, str], otlp_endpoint: str, service_logs: Path
) -> Callable[..., Iterator[RunningService]]:
    """Runs ``python -m module`` with the stack's variables and OTLP export to
    ``otlp_endpoint``."""

    def start(
        name: str, module: str, port_variable: str, environment: Mapping[str, str]
    ) -> Iterator[RunningService]:
        log = service_logs / f"{name}.log"
        full = {
            **system_environment,
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
            # Export every 200 ms rather than every 5 s: the tests wait for spans.
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "OTEL_SDK_DISABLED": "false",
            **environment,
        }
        with service_process(
            module, environment=full, port_variable=port_variable, timeout=240, log=log
        ) as port:
            yield RunningService(name, port, log)

    return start


@pytest.fixture(scope="package")
def crypto_service(
    stack: StackEndpoints, run_id: str, start_service: Callable[..., Iterator[RunningService]]
) -> Iterator[RunningService]:
    """The crypto worker, in a consumer group of this run."""
    group = f"x0-crypto-system-{run_id}"
    start_groups_at_end(stack.kafka_bootstrap, {group: crypto.TOPIC})
    yield from start_service("crypto", "x0_crypto", "X0_CRYPTO_PORT", {"X0_CRYPTO_GROUP_ID": group})


@pytest.fixture(scope="package")
def rag_service(
    stack: StackEndpoints,
    run_id: str,
    service_logs: Path,
    start_service: Callable[..., Iterator[RunningService]],
) -> Iterator[RunningService]:
    """A RAG worker replica of this run (its own query and writer groups and snapshots)."""
    query, writer = f"x0-rag-queries-system-{run_id}", f"x0-rag-writer-system-{run_id}"
    start_groups_at_end(
        stack.kafka_bootstrap, {query: rag.REQUESTS_TOPIC, writer: rag.INGEST_TOPIC}
    )
    environment = {
        "X0_RAG_QUERY_GROUP_ID": query,
        "X0_RAG_WRITER_GROUP_ID": writer,
        "X0_RAG_REPLICA_ID": f"system-{run_id}",
        "X0_RAG_SNAPSHOT_DIR": str(service_logs / "rag-snapshots"),
        # The run's database starts empty: snapshots every second, so the snapshot
        # panels have a collection's age to show within the run.
        "X0_RAG_SNAPSHOT_INTERVAL_SECONDS": "1",
    }
    yield from start_service("rag", "x0_rag", "X0_RAG_PORT", environment)


@pytest.fixture(scope="package")
def telemetry_service(
    stack: StackEndpoints, run_id: str, start_service: Callable[..., Iterator[RunningService]]
) -> Iterator[RunningService]:
    """The telemetry worker, with ingest and query groups of this run."""
    ingest, queries = (
        f"x0-telemetry-ingest-system-{run_id}",
        f"x0-telemetry-queries-system-{run_id}",
    )
    start_groups_at_end(
        stack.kafka_bootstrap,
        {ingest: telemetry.EVENTS_TOPIC, queries: telemetry.REQUESTS_TOPIC},
    )
    environment = {
        "X0_TELEMETRY_INGEST_GROUP_ID": ingest,
        "X0_TELEMETRY_QUERY_GROUP_ID": queries,
        # Every second rather than every 10 s: Prometheus scrapes every second here.
        "X0_TELEMETRY_LAG_INTERVAL_SECONDS": "1",
        "X0_TELEMETRY_GAUGES_REFRESH_SECONDS": "1",
        # Small enough for the dashboards test to reach with nodes of its own.
        "X0_TELEMETRY_MAX_NODE_SERIES": str(TELEMETRY_MAX_NODE_SERIES),
        # The shared Redis holds earlier runs' meshes (for a day): room for all of them,
        # so this run's meshes get series of their own (the "_other" fold is unit-tested).
        "X0_TELEMETRY_MAX_MESH_SERIES": "100000",
    }
    yield from start_service("telemetry", "x0_telemetry", "X0_TELEMETRY_PORT", environment)


@pytest.fixture(scope="package")
def workers(
    crypto_service: RunningService, rag_service: RunningService, telemetry_service: RunningService
) -> dict[str, RunningService]:
    """The three workers by name, all ready."""
    return {service.name: service for service in (crypto_service, rag_service, telemetry_service)}


@pytest.fixture(scope="package")
def gateway_service(
    run_id: str,
    workers: dict[str, RunningService],
    start_service: Callable[..., Iterator[RunningService]],
) -> Iterator[RunningService]:
    """The gateway, started once every worker is ready (its reply topic is this run's),
    its metrics on a port of their own."""
    metrics_port = free_port()
    environment = {
        "X0_GATEWAY_REPLICA_ID": f"system-{run_id}",
        "X0_GATEWAY_REQUEST_TIMEOUT_SECONDS": "30",
        "X0_GATEWAY_METRICS_PORT": str(metrics_port),
    }
    running = start_service("gateway", "x0_gateway", "X0_GATEWAY_PORT", environment)
    try:
        yield dataclasses.replace(next(running), metrics_port=metrics_port)
    finally:
        running.close()


@pytest.fixture(scope="package")
def services(
    gateway_service: RunningService, workers: dict[str, RunningService]
) -> dict[str, RunningService]:
    """Every service process by name: gateway, crypto, rag, telemetry."""
    return {"gateway": gateway_service, **workers}


@pytest.fixture(scope="package")
def client(
    gateway_service: RunningService, system_environment: dict[str, str]
) -> Iterator[httpx.Client]:
    """An HTTP client of the gateway process, sending an API key with every grantable
    scope (made in this run's database)."""
    created = _in_thread(
        provision_key(system_environment["X0_POSTGRES__DSN"], GatewaySettings().pepper())
    )
    headers = {"Authorization": f"Bearer {created.key}"}
    with httpx.Client(base_url=gateway_service.url, timeout=60, headers=headers) as http:
        yield http


# -- Prometheus --


def _rewrite_target(target: str, ports: Mapping[str, int]) -> str | None:
    _, _, port = target.rpartition(":")
    name = DEFAULT_PORTS.get(int(port)) if port.isdigit() else None
    return None if name is None else f"127.0.0.1:{ports[name]}"


def prometheus_config(source: Path, ports: Mapping[str, int]) -> tuple[dict[str, Any], list[str]]:
    """The scrape configuration for this session, and the jobs left out of it.

    ``source`` (``deploy/prometheus/prometheus.yml``) as committed: its jobs, labels,
    relabelling and rule files, with each target on a default port rewritten to the
    port the session's process got. Jobs with no such target (the PostgreSQL and Redis
    exporters this machine does not run) and Alertmanager are left out; every interval
    becomes 1 s so a test need not wait 15 s per scrape.
    """
    config = yaml.safe_load(source.read_text())
    config.pop("alerting", None)
    config.pop("remote_write", None)
    config["global"] = {
        **config.get("global", {}),
        "scrape_interval": SCRAPE_INTERVAL,
        "scrape_timeout": SCRAPE_INTERVAL,
        "evaluation_interval": SCRAPE_INTERVAL,
    }
    # Rule files are relative to the configuration file, which is written elsewhere.
    config["rule_files"] = [
        str(source.parent / pattern) if not Path(pattern).is_absolute() else pattern
        for pattern in config.get("rule_files") or []
    ]
    jobs, dropped = [], []
    for job in config.get("scrape_configs") or []:
        static = []
        for group in job.get("static_configs") or []:
            targets = [t for t in (_rewrite_target(x, ports) for x in group["targets"]) if t]
            if targets:
                static.append({**group, "targets": targets})
        if not static:
            dropped.append(job["job_name"])
            continue
        sd_configs = [key for key in job if key.endswith("_sd_configs")]
        for key in sd_configs:
            del job[key]
        job.update(
            static_configs=static, scrape_interval=SCRAPE_INTERVAL, scrape_timeout=SCRAPE_INTERVAL
        )
        jobs.append(job)
    config["scrape_configs"] = jobs
    return config, dropped


@dataclass
class Prometheus:
    """The running Prometheus of the session and its HTTP API."""

    url: str
    config: dict[str, Any]
    config_file: Path
    log: Path
    dropped_jobs: list[str]

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>``; the ``data`` of a ``success`` answer (else an error)."""
        query = urllib.parse.urlencode(params)
        url = f"{self.url}/api/v1/{path}" + (f"?{query}" if query else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - ours
                body = json.load(response)
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            msg = f"{path} {params}: {body.get('errorType')}: {body.get('error')}"
            raise PrometheusError(msg)
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """An instant query at now; the result vector (or the matrix/scalar as a list)."""
        data = self.api("query", query=expression)
        result = data["result"]
        return result if isinstance(result, list) else [result]

    def targets(self) -> list[dict[str, Any]]:
        """Every active target with its health, last scrape and last error."""
        return list(self.api("targets", state="active")["activeTargets"])

    def wait_for_scrapes(self, count: int = 2, timeout: float = 60.0) -> None:
        """Return once every target was scraped successfully ``count`` times from now."""
        for _ in range(count):
            since = datetime.now(UTC)
            deadline = time.monotonic() + timeout
            while True:
                targets = self.targets()
                if targets and all(
                    target["health"] == "up" and _instant(target["lastScrape"]) > since
                    for target in targets
                ):
                    break
                if time.monotonic() > deadline:
                    raise PrometheusError(f"targets not scraped again: {_health(targets)}")
                time.sleep(0.25)


class PrometheusError(AssertionError):
    """Prometheus answered an error, or its targets did not come up."""


def _instant(text: str) -> datetime:
    # RFC 3339 with up to nanoseconds ("2026-11-27T20:33:21.123456789Z"); Python reads
    # at most microseconds.
    return datetime.fromisoformat(re.sub(r"(\.\d{6})\d+", r"\1", text).replace("Z", "+00:00"))


def _health(targets: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{t['labels'].get('job')} {t['scrapeUrl']} {t['health']} {t['lastError']!r}"
        for t in targets
    )


@pytest.fixture(scope="package")
def prometheus(
    services: dict[str, RunningService], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """The real Prometheus scraping every service of the session, all targets up."""
    if not PROMETHEUS_BINARY.exists():
        pytest.fail(
            f"{PROMETHEUS_BINARY} is missing: install Debian's `prometheus` package "
            "(`deploy/local-stack/stack.sh up` does)"
        )
    folder = tmp_path_factory.mktemp("prometheus")
    source = PROMETHEUS_DIR / "prometheus.yml"
    port = free_port()
    ports = {
        "prometheus": port,
        **{name: service.scraped_port for name, service in services.items()},
    }
    config, dropped = prometheus_config(source, ports)
    scraped = {
        target
        for job in config["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    }
    unscraped = [
        name for name, s in services.items() if f"127.0.0.1:{s.scraped_port}" not in scraped
    ]
    if unscraped:
        pytest.fail(f"{source} scrapes no target for {unscraped} (ports {DEFAULT_PORTS})")
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log = folder / "prometheus.log"
    server = Prometheus(f"http://127.0.0.1:{port}", config, config_file, log, dropped)
    command = [
        str(PROMETHEUS_BINARY),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
    ]
    with log.open("a") as output:
        executor = http_executor(
            command, ready_url=f"{server.url}/-/ready", output=output, timeout=60
        )
        try:
            executor.start()
        except (ProcessExitedWithError, TimeoutExpired) as error:
            pytest.fail(f"{error}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            _wait_until_up(server, executor, expected=len(scraped))
            yield server
        finally:
            executor.stop()
            shutil.rmtree(folder / "data", ignore_errors=True)


def _wait_until_up(server: Prometheus, executor: HTTPExecutor, expected: int) -> None:
    deadline = time.monotonic() + 60
    targets: list[dict[str, Any]] = []
    while True:
        if not executor.running():
            tail = server.log.read_text(errors="replace")[-3000:]
            pytest.fail(f"prometheus exited:\n{tail}")
        try:
            targets = server.targets()
        except (OSError, PrometheusError):
            targets = []
        if len(targets) >= expected and all(t["health"] == "up" for t in targets):
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"Prometheus targets not all up within 60 s (config {server.config_file}, "
                f"jobs left out: {server.dropped_jobs}): {_health(targets) or 'none'}"
            )
        time.sleep(0.5)
