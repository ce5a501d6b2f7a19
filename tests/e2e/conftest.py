"""End-to-end: real worker processes, an in-process gateway, the real broker.

The workers are package-scoped (this folder has an ``__init__.py`` for that): they
stop when the e2e tests end, because each consumes the shared topics in groups of
its own and would also answer the requests of later folders' workers (tests/system).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import IO

import asyncpg
import httpx
import pytest
from mirakuru import HTTPExecutor
from prometheus_client.parser import text_string_to_metric_families

from x0_common.events import telemetry as telemetry_events
from x0_common.events.rag import INGEST_TOPIC, REQUESTS_TOPIC
from x0_common.settings import CommonSettings
from x0_common.testing.kafka import start_groups_at_end
from x0_common.testing.processes import (
    READY_PATH,
    free_port,
    http_executor,
    python_command,
    service_process,
)
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings


@pytest.fixture(scope="package")
def crypto_worker(stack: StackEndpoints) -> Iterator[int]:
    """A crypto worker process in its own consumer group; yields its HTTP port."""
    group = {"X0_CRYPTO_GROUP_ID": f"x0-crypto-e2e-{uuid.uuid4().hex[:8]}"}
    with service_process(
        "x0_crypto", environment={**stack.environment(), **group}, port_variable="X0_CRYPTO_PORT"
    ) as port:
        yield port


# Small on purpose: the tests flood it past the cap and watch it hold.
TELEMETRY_MAX_NODE_SERIES = 20


@pytest.fixture(scope="package")
def telemetry_worker(stack: StackEndpoints) -> Iterator[int]:
    """A telemetry worker process (ingest and query groups of its own, starting at the end
    of their topics, so it never replays earlier runs' events); yields its HTTP port.

    Node gauges refresh every 0.5 s and at most ``TELEMETRY_MAX_NODE_SERIES`` nodes get
    node-labelled series; a node is down 30 s after its last heartbeat.
    """
    run = uuid.uuid4().hex[:8]
    ingest, queries = f"x0-telemetry-ingest-e2e-{run}", f"x0-telemetry-queries-e2e-{run}"
    start_groups_at_end(
        stack.kafka_bootstrap,
        {ingest: telemetry_events.EVENTS_TOPIC, queries: telemetry_events.REQUESTS_TOPIC},
    )
    environment = {
        **stack.environment(),
        "X0_TELEMETRY_INGEST_GROUP_ID": ingest,
        "X0_TELEMETRY_QUERY_GROUP_ID": queries,
        "X0_TELEMETRY_GAUGES_REFRESH_SECONDS": "0.5",
        "X0_TELEMETRY_MAX_NODE_SERIES": str(TELEMETRY_MAX_NODE_SERIES),
        # The shared Redis holds earlier runs' meshes (for a day): room for all of them,
        # so this run's meshes get series of their own (the "_other" fold is unit-tested).
        "X0_TELEMETRY_MAX_MESH_SERIES": "100000",
        "X0_TELEMETRY_DOWN_TIMEOUT_SECONDS": "30",
        "X0_TELEMETRY_LAG_INTERVAL_SECONDS": "2",
    }
    with service_process(
        "x0_telemetry", environment=environment, port_variable="X0_TELEMETRY_PORT"
    ) as port:
        yield port


@pytest.fixture(scope="package")
def rag_worker(
    stack: StackEndpoints,
    tmp_path_factory: pytest.TempPathFactory,
    rag_groups: Callable[[str], dict[str, str]],
) -> Iterator[int]:
    """A RAG worker process (query and writer groups of its own, starting at the end of
    their topics, so it never replays earlier runs' history); yields its HTTP port."""
    run = uuid.uuid4().hex[:8]
    environment = {
        **stack.environment(),
        **rag_groups("session"),
        "X0_RAG_REPLICA_ID": f"e2e-{run}",
        "X0_RAG_SNAPSHOT_DIR": str(tmp_path_factory.mktemp("rag-snapshots")),
    }
    with service_process("x0_rag", environment=environment, port_variable="X0_RAG_PORT") as port:
        yield port


@pytest.fixture(scope="package")
async def gateway(
    stack: StackEndpoints,
    crypto_worker: int,
    rag_worker: int,
    telemetry_worker: int,
    admin_api_key: str,
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in process (its requester talks to the real broker); the client
    sends an API key with every grantable scope."""
    postgres, redis = stack.service_stores("gateway")  # as the gateway's own role and user
    settings = GatewaySettings(
        common=CommonSettings(kafka=stack.kafka_settings(), postgres=postgres, redis=redis),
        replica_id=f"e2e-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=30,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            timeout=60,
            headers={"Authorization": f"Bearer {admin_api_key}"},
        ) as client:
            yield client


# -- RAG workers a test controls (start, SIGKILL, restart), its own gateway, the database --


class RagWorker:
    """A ``python -m x0_rag`` process a test starts, kills and restarts itself.

    Its output goes to ``log`` (kept in the test's temporary folder for a post-mortem).
    Each start takes a new free port; ``url`` names the current one.
    """

    def __init__(self, environment: Mapping[str, str], *, log: Path) -> None:
        self.environment = dict(environment)
        self.log = log
        self.port = 0
        self._executor: HTTPExecutor | None = None
        self._output: IO[str] | None = None

    @property
    def url(self) -> str:
        """Where this run of the worker serves ``/metrics`` and ``/health/*``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Started and not exited."""
        return self._executor is not None and self._executor.running()

    def start(self, timeout: float = 120.0) -> None:
        """Start the process and wait until ``/health/ready`` answers 200 (blocking)."""
        assert not self.running, "already running"
        self._close_output()
        self.port = free_port()
        self._output = self.log.open("a")
        self._executor = http_executor(
            python_command("x0_rag"),
            ready_url=f"{self.url}{READY_PATH}",
            environment={**self.environment, "X0_RAG_PORT": str(self.port)},
            output=self._output,
            timeout=timeout,
        )
        self._executor.start()

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, no offset is committed, no snapshot is written."""
        assert self._executor is not None
        self._executor.kill()

    def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after the start timeout; nothing if not
        running."""
        if self._executor is not None:
            self._executor.stop()
        self._close_output()

    def _close_output(self) -> None:
        if self._output is not None:
            self._output.close()
            self._output = None

    async def metric(self, sample: str, **labels: str) -> float:
        """The sum of the worker's ``sample`` values whose labels include ``labels`` (0 if none).

        E.g. ``await worker.metric("x0_rag_index_size", collection="docs")``.
        """
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(f"{self.url}/metrics")
        response.raise_for_status()
        return sum(
            value.value
            for family in text_string_to_metric_families(response.text)
            for value in family.samples
            if value.name == sample and labels.items() <= value.labels.items()
        )


@pytest.fixture(scope="session")
def rag_groups(stack: StackEndpoints) -> Callable[[str], dict[str, str]]:
    """Makes ``X0_RAG_*_GROUP_ID`` variables for a new set of RAG workers: query and
    writer groups of their own, starting at the current end of their topics."""

    def make(label: str) -> dict[str, str]:
        run = f"{label}-{uuid.uuid4().hex[:8]}"
        query, writer = f"x0-rag-queries-e2e-{run}", f"x0-rag-writer-e2e-{run}"
        start_groups_at_end(stack.kafka_bootstrap, {query: REQUESTS_TOPIC, writer: INGEST_TOPIC})
        return {"X0_RAG_QUERY_GROUP_ID": query, "X0_RAG_WRITER_GROUP_ID": writer}

    return make


class RagWorkers:
    """Makes RAG worker replicas that share this test's query and writer groups."""

    def __init__(self, stack: StackEndpoints, groups: Mapping[str, str], folder: Path) -> None:
        self._stack = stack
        self._groups = dict(groups)
        self._folder = folder
        self.run = uuid.uuid4().hex[:8]
        self.made: list[RagWorker] = []

    def replica(self, name: str) -> RagWorker:
        """A replica (not started yet) with its own replica id and snapshot folder."""
        environment = {
            **self._stack.environment(),
            **self._groups,
            "X0_RAG_REPLICA_ID": f"e2e-{self.run}-{name}",
            "X0_RAG_SNAPSHOT_DIR": str(self._folder / f"snapshots-{name}"),
        }
        worker = RagWorker(environment, log=self._folder / f"rag-{name}.log")
        self.made.append(worker)
        return worker


@pytest.fixture
def rag_workers(
    stack: StackEndpoints, rag_groups: Callable[[str], dict[str, str]], tmp_path: Path
) -> Iterator[RagWorkers]:
    """Makes this test's RAG worker replicas (query and writer groups of its own); stops
    every one still running at the end."""
    workers = RagWorkers(stack, rag_groups("controlled"), tmp_path)
    yield workers
    for worker in workers.made:
        worker.stop()


@pytest.fixture
async def rag_gateway(
    stack: StackEndpoints, admin_api_key: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A gateway of this test's own, in process, that waits up to 60 s for a reply (long
    enough for a killed worker to be replaced); the client sends an admin API key."""
    postgres, redis = stack.service_stores("gateway")  # as the gateway's own role and user
    settings = GatewaySettings(
        common=CommonSettings(kafka=stack.kafka_settings(), postgres=postgres, redis=redis),
        replica_id=f"e2e-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=60,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://gateway",
            timeout=120,
            headers={"Authorization": f"Bearer {admin_api_key}"},
        ) as client:
            yield client


@pytest.fixture
async def rag_database(stack: StackEndpoints) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the PostgreSQL the RAG workers write (schema ``rag``)."""
    connection = await asyncpg.connect(stack.postgres_dsn)
    try:
        yield connection
    finally:
        await connection.close()
