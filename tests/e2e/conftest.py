"""End-to-end: a real crypto worker process, an in-process gateway, the real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from x0_common.settings import CommonSettings
from x0_common.testing.processes import service_process
from x0_common.testing.stack import StackEndpoints
from x0_gateway.app import create_app
from x0_gateway.settings import GatewaySettings


@pytest.fixture(scope="session")
def crypto_worker(stack: StackEndpoints) -> Iterator[int]:
    """A crypto worker process in its own consumer group; yields its HTTP port."""
    group = {"X0_CRYPTO_GROUP_ID": f"x0-crypto-e2e-{uuid.uuid4().hex[:8]}"}
    with service_process(
        "x0_crypto", environment={**stack.environment(), **group}, port_variable="X0_CRYPTO_PORT"
    ) as port:
        yield port


@pytest.fixture(scope="session")
def rag_worker(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A RAG worker process (query and writer groups of its own); yields its HTTP port."""
    run = uuid.uuid4().hex[:8]
    environment = {
        **stack.environment(),
        "X0_RAG_QUERY_GROUP_ID": f"x0-rag-queries-e2e-{run}",
        "X0_RAG_WRITER_GROUP_ID": f"x0-rag-writer-e2e-{run}",
        "X0_RAG_REPLICA_ID": f"e2e-{run}",
        "X0_RAG_SNAPSHOT_DIR": str(tmp_path_factory.mktemp("rag-snapshots")),
    }
    with service_process("x0_rag", environment=environment, port_variable="X0_RAG_PORT") as port:
        yield port


@pytest.fixture(scope="session")
async def gateway(
    stack: StackEndpoints, crypto_worker: int, rag_worker: int
) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway app in process (its requester talks to the real broker)."""
    settings = GatewaySettings(
        common=CommonSettings(kafka=stack.kafka_settings()),
        replica_id=f"e2e-{uuid.uuid4().hex[:8]}",
        request_timeout_seconds=30,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://gateway", timeout=60
        ) as client:
            yield client
