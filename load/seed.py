"""What the callers need before the load starts, made at test start and removed at stop.

- a RAG collection ``load-<run>`` with ``SEED_DOCUMENTS`` documents, searchable before
  the first search (ingest with ``wait=true``);
- a mesh ``load-<run>`` with ``SEED_NODES`` nodes that reported in (heartbeat and
  metrics), so operators have nodes to read even when no mesh node users run.

Plain ``requests`` against the gateway, outside Locust's statistics: seeding is not load.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from load import auth
from load.corpus import documents

SEED_DOCUMENTS = 60
SEED_NODES = 5
SEARCHABLE_TIMEOUT_S = 60.0
NODES_TIMEOUT_S = 30.0


class SeedError(RuntimeError):
    """The gateway refused or did not finish what the run needs."""


@dataclass
class Seeded:
    """What the run made: the collection, the mesh and its nodes."""

    collection: str
    mesh_id: str
    nodes: list[str] = field(default_factory=list)


# What this Locust process seeded; set at test start, read by the users.
current: Seeded | None = None


def seeded() -> Seeded:
    """This run's seeded collection and mesh (set before any user starts)."""
    if current is None:
        msg = "nothing was seeded: the locustfile's test_start hook did not run"
        raise SeedError(msg)
    return current


def now() -> str:
    """The current UTC time as the API's date-time."""
    return datetime.now(UTC).isoformat()


def node_events(node_id: str, mesh_id: str, neighbours: list[str]) -> list[dict[str, object]]:
    """A node's heartbeat and metrics report, stamped now."""
    stamp = now()
    return [
        {
            "kind": "heartbeat",
            "node_id": node_id,
            "mesh_id": mesh_id,
            "timestamp": stamp,
            "software_version": "load-1.0",
        },
        {
            "kind": "metrics",
            "node_id": node_id,
            "mesh_id": mesh_id,
            "timestamp": stamp,
            "cpu": 0.3,
            "memory": 0.5,
            "rtt_ms": 12.5,
            "packet_loss": 0.01,
            "throughput_bps": 1.5e6,
            "neighbours": [{"node_id": n, "link_quality": 0.9, "rtt_ms": 10.0} for n in neighbours],
        },
    ]


def _checked(response: requests.Response, what: str) -> requests.Response:
    if response.status_code >= 300:
        msg = f"{what}: {response.status_code} {response.text[:300]}"
        raise SeedError(msg)
    return response


def seed(host: str, run_id: str, *, rag: bool, telemetry: bool) -> Seeded:
    """Make the collection (when ``rag``) and the mesh's nodes (when ``telemetry``)."""
    seeded = Seeded(collection=f"load-{run_id}", mesh_id=f"load-{run_id}")
    with requests.Session() as session:
        session.headers.update(auth.headers())
        if rag:
            _checked(
                session.post(f"{host}/v1/rag/collections", json={"name": seeded.collection}),
                "create_collection",
            )
            _checked(
                session.post(
                    f"{host}/v1/rag/collections/{seeded.collection}/documents",
                    params={"wait": "true"},
                    json={"documents": documents(SEED_DOCUMENTS)},
                    timeout=SEARCHABLE_TIMEOUT_S,
                ),
                "upsert_documents (seed)",
            )
        if telemetry:
            seeded.nodes = [f"load-{run_id}-seed-{i}" for i in range(SEED_NODES)]
            events = [
                event
                for i, node in enumerate(seeded.nodes)
                for event in node_events(node, seeded.mesh_id, [seeded.nodes[i - 1]])
            ]
            _checked(
                session.post(f"{host}/v1/telemetry/events", json={"events": events}),
                "publish_events (seed)",
            )
            _wait_for_nodes(session, host, seeded)
    return seeded


def _wait_for_nodes(session: requests.Session, host: str, seeded: Seeded) -> None:
    """Until the telemetry worker has stored every seeded node (ingest is asynchronous)."""
    deadline = time.monotonic() + NODES_TIMEOUT_S
    while True:
        answer = _checked(
            session.get(f"{host}/v1/telemetry/nodes", params={"mesh_id": seeded.mesh_id}),
            "list_nodes (seed)",
        ).json()
        if {n["node_id"] for n in answer["nodes"]} >= set(seeded.nodes):
            return
        if time.monotonic() > deadline:
            msg = f"the seeded nodes were not listed within {NODES_TIMEOUT_S:.0f} s"
            raise SeedError(msg)
        time.sleep(0.5)


def clean(host: str, seeded: Seeded) -> None:
    """Delete the collection (mesh nodes expire by themselves)."""
    with requests.Session() as session:
        session.headers.update(auth.headers())
        session.delete(f"{host}/v1/rag/collections/{seeded.collection}", timeout=30)
