"""x0-client against the real gateway and workers (Kafka, PostgreSQL, Redis, the real
crypto library and model): the async client through the in-process gateway of the
e2e fixtures, the sync client over real HTTP to a gateway process."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import httpx
import pytest

from x0_client import (
    AsyncClient,
    Client,
    ConflictError,
    NotFoundError,
    UnauthorizedError,
    X0ClientError,
)
from x0_common.events import rag
from x0_common.events import telemetry as t
from x0_common.events.names import KemAlgorithm

from .client_support import gateway_url

pytestmark = pytest.mark.e2e
__all__ = ["gateway_url"]  # the fixture, used by name

R = TypeVar("R")


async def eventually(check: Callable[[], Awaitable[R]], timeout: float = 30.0) -> R:
    """``check()``'s result once it stops failing (telemetry ingest is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except (AssertionError, NotFoundError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


@pytest.fixture
async def x0(gateway: httpx.AsyncClient) -> AsyncIterator[AsyncClient]:
    """The async client on the e2e gateway (in process, real broker and workers)."""
    async with AsyncClient(http_client=gateway) as client:
        yield client


@pytest.mark.parametrize("algorithm", ["ML-KEM-768", "X-Wing"])
async def test_a_stateless_kem_round_trip(x0: AsyncClient, algorithm: KemAlgorithm) -> None:
    pair = await x0.kem_keypair(algorithm=algorithm)
    assert isinstance(pair.public_key, bytes)
    sent = await x0.kem_encapsulate(algorithm=algorithm, public_key=pair.public_key)
    opened = await x0.kem_decapsulate(
        algorithm=algorithm,
        secret_key=pair.secret_key,
        ciphertext=sent.ciphertext,
    )
    assert opened.shared_secret == sent.shared_secret
    assert len(sent.shared_secret) == 32


async def test_a_managed_key_encrypts_and_decrypts_bytes(x0: AsyncClient) -> None:
    name = f"e2e-client-{uuid.uuid4().hex[:8]}"
    created = await x0.create_key(name=name, type="X-Wing")
    assert (created.name, created.latest_version) == (name, 1)
    plaintext = bytes(range(256)) * 3
    sealed = await x0.key_encrypt(name=name, plaintext=plaintext, associated_data=b"header")
    assert sealed.ciphertext.startswith("x0:v1:")
    opened = await x0.key_decrypt(
        name=name, ciphertext=sealed.ciphertext, associated_data=b"header"
    )
    assert opened.plaintext == plaintext
    # A second create of the same name is a conflict, typed as one.
    with pytest.raises(ConflictError) as conflict:
        await x0.create_key(name=name, type="X-Wing")
    assert conflict.value.status == 409
    rotated = await x0.rotate_key(name=name)
    assert rotated.latest_version == 2
    # Version 1's ciphertext still opens (min_decryption_version stays 1).
    reopened = await x0.key_decrypt(
        name=name, ciphertext=sealed.ciphertext, associated_data=b"header"
    )
    assert reopened.plaintext == plaintext
    assert name in (await x0.list_keys()).names


async def test_a_collection_upsert_with_wait_then_search(x0: AsyncClient) -> None:
    name = f"e2e-client-{uuid.uuid4().hex[:8]}"
    await x0.create_collection(name=name, chunk_size=256)
    try:
        accepted = await x0.upsert_documents(
            collection=name,
            documents=[
                rag.Document(
                    id="w", text="The weather is lovely and sunny today.", metadata={"lang": "en"}
                ),
                rag.Document(id="k", text="Kafka keeps the messages of a partition in order."),
            ],
            wait=True,
        )
        assert accepted.documents == 2
        found = await x0.search(
            collection=name, query="sunny weather", k=2, min_version=accepted.version
        )
        assert found.hits[0].document_id == "w"
        keyword = await x0.search(collection=name, query="partition", mode="keyword")
        assert [h.document_id for h in keyword.hits] == ["k"]
        assert (await x0.get_document(collection=name, id="w")).metadata == {"lang": "en"}
        await x0.delete_documents(collection=name, ids=["w"], wait=True)
        with pytest.raises(NotFoundError):
            await x0.get_document(collection=name, id="w")
        assert (await x0.get_collection(name=name)).documents == 1
    finally:
        await x0.delete_collection(name=name)
    with pytest.raises(NotFoundError):
        await x0.get_collection(name=name)


async def test_a_telemetry_event_becomes_the_nodes_state(x0: AsyncClient) -> None:
    run = uuid.uuid4().hex[:8]
    node, mesh = f"{run}-a", f"mesh-{run}"
    now = datetime.now(UTC).replace(microsecond=0)
    accepted = await x0.publish_events(
        events=[
            t.NodeHeartbeat(node_id=node, mesh_id=mesh, timestamp=now, software_version="9.9"),
            t.NodeMetrics(
                node_id=node,
                mesh_id=mesh,
                timestamp=now,
                cpu=0.25,
                memory=0.5,
                rtt_ms=12.0,
                packet_loss=0.0,
                throughput_bps=1e6,
                neighbours=[t.Neighbour(node_id=f"{run}-b", link_quality=0.75)],
            ),
        ]
    )
    assert accepted.accepted == 2

    async def state() -> t.NodeState:
        found = await x0.get_node(node_id=node)
        assert found.metrics is not None
        return found

    found = await eventually(state)
    assert (found.status, found.software_version, found.mesh_id) == ("up", "9.9", mesh)
    assert found.metrics is not None
    assert found.metrics.cpu == 0.25
    listed = await x0.list_nodes(mesh_id=mesh, limit=10)
    assert [n.node_id for n in listed.nodes] == [node]
    history = await x0.node_history(
        node_id=node,
        start=now - timedelta(minutes=5),
        end=now + timedelta(minutes=1),
        step_seconds=60,
    )
    assert sum(p.samples for p in history.points) == 1
    topology = await x0.topology(mesh_id=mesh)
    assert [(link.source, link.target) for link in topology.links] == [(node, f"{run}-b")]


async def test_the_sync_client_over_http_reads_x0_url_and_x0_api_key(
    gateway_url: str, admin_api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X0_URL", gateway_url)
    monkeypatch.delenv("X0_API_KEY", raising=False)
    with pytest.raises(UnauthorizedError) as refused:
        await asyncio.to_thread(list_keys)
    assert refused.value.status == 401
    monkeypatch.setenv("X0_API_KEY", admin_api_key)
    # In a thread: the session's event loop (the in-process gateway's) keeps running.
    missing = await asyncio.to_thread(sync_calls)
    assert missing.code == "not_found"
    assert isinstance(missing, X0ClientError)


def list_keys() -> None:
    """``list_keys`` with a sync client of the environment's settings."""
    with Client() as x0:
        x0.list_keys()


def sync_calls() -> NotFoundError:
    """Algorithms, a signature round trip and a missing key, with the sync client."""
    with Client() as x0:
        names = {a.name for a in x0.algorithms().algorithms}
        assert {"ML-KEM-768", "X-Wing", "ML-DSA-65"} <= names
        pair = x0.signature_keypair(algorithm="ML-DSA-65")
        signed = x0.sign(
            algorithm="ML-DSA-65", secret_key=pair.secret_key, message=b"m", context=b"c"
        )
        checks = [
            x0.verify(
                algorithm="ML-DSA-65",
                public_key=pair.public_key,
                message=message,
                signature=signed.signature,
                context=b"c",
            ).valid
            for message in (b"m", b"n")
        ]
        assert checks == [True, False]
        with pytest.raises(NotFoundError) as missing:
            x0.read_key(name=f"missing-{uuid.uuid4().hex[:8]}")
    return missing.value
