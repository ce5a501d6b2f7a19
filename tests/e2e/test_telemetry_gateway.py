"""Telemetry through the gateway, Kafka and a real telemetry worker (PostgreSQL, Redis)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest

pytestmark = pytest.mark.e2e

R = TypeVar("R")


async def eventually(check: Callable[[], Awaitable[R]], timeout: float = 30.0) -> R:
    """``check()``'s result once it stops failing an assertion (ingest is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


def heartbeat(node: str, mesh: str, at: datetime, status: str = "up") -> dict[str, Any]:
    return {
        "kind": "heartbeat",
        "node_id": node,
        "mesh_id": mesh,
        "timestamp": at.isoformat(),
        "status": status,
        "software_version": "3.1.4",
    }


def metrics(
    node: str, mesh: str, at: datetime, cpu: float, neighbours: dict[str, float]
) -> dict[str, Any]:
    return {
        "kind": "metrics",
        "node_id": node,
        "mesh_id": mesh,
        "timestamp": at.isoformat(),
        "cpu": cpu,
        "memory": 0.5,
        "rtt_ms": 20.0,
        "packet_loss": 0.01,
        "throughput_bps": 1e6,
        "neighbours": [{"node_id": n, "link_quality": q} for n, q in neighbours.items()],
    }


async def post(gateway: httpx.AsyncClient, events: list[dict[str, Any]]) -> None:
    response = await gateway.post("/v1/telemetry/events", json={"events": events})
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(events)}


async def node(gateway: httpx.AsyncClient, node_id: str) -> dict[str, Any]:
    response = await gateway.get(f"/v1/telemetry/nodes/{node_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_events_posted_to_the_gateway_become_state_history_and_topology(
    gateway: httpx.AsyncClient,
) -> None:
    run = uuid.uuid4().hex[:8]
    mesh, other_mesh = f"mesh-{run}", f"mesh-{run}-other"
    a, b, c, d = (f"{run}-{name}" for name in "abcd")
    now = datetime.now(UTC).replace(microsecond=0)
    # Ten minutes ago, on a minute edge: two samples in its minute, one in the next.
    base = now.replace(second=0) - timedelta(minutes=10)
    events = [
        metrics(a, mesh, base + timedelta(seconds=5), 0.2, {b: 0.9}),
        metrics(a, mesh, base + timedelta(seconds=25), 0.4, {b: 0.9}),
        metrics(a, mesh, base + timedelta(seconds=65), 0.6, {b: 0.9}),
        metrics(b, mesh, base + timedelta(seconds=70), 0.5, {a: 0.7, c: 0.3}),
        heartbeat(a, mesh, now),
        heartbeat(b, mesh, now, status="draining"),
        # Silent for longer than the down timeout.
        heartbeat(c, mesh, now - timedelta(minutes=10)),
        heartbeat(d, other_mesh, now),
    ]
    await post(gateway, events)

    # Latest state: the newest heartbeat and the newest metrics of the node.
    state = await eventually(lambda: _node_with_metrics(gateway, a))
    assert state["mesh_id"] == mesh
    assert state["status"] == "up"
    assert state["software_version"] == "3.1.4"
    assert datetime.fromisoformat(state["last_heartbeat"]) == now
    assert state["metrics"]["cpu"] == pytest.approx(0.6)
    assert datetime.fromisoformat(state["metrics"]["timestamp"]) == base + timedelta(seconds=65)
    assert [(n["node_id"], n["link_quality"]) for n in state["neighbours"]] == [(b, 0.9)]

    # Lists, by mesh and by derived status ("down": no heartbeat within the timeout).
    async def mesh_nodes() -> dict[str, str]:
        response = await gateway.get("/v1/telemetry/nodes", params={"mesh_id": mesh})
        assert response.status_code == 200, response.text
        found = {n["node_id"]: n["status"] for n in response.json()["nodes"]}
        assert set(found) == {a, b, c}
        return found

    assert await eventually(mesh_nodes) == {a: "up", b: "draining", c: "down"}
    for status, expected in (("down", [c]), ("draining", [b]), ("up", [a])):
        response = await gateway.get(
            "/v1/telemetry/nodes", params={"mesh_id": mesh, "status": status}
        )
        assert [n["node_id"] for n in response.json()["nodes"]] == expected, status
    others = await gateway.get("/v1/telemetry/nodes", params={"mesh_id": other_mesh})
    assert [n["node_id"] for n in others.json()["nodes"]] == [d]
    limited = await gateway.get("/v1/telemetry/nodes", params={"mesh_id": mesh, "limit": 1})
    assert [n["node_id"] for n in limited.json()["nodes"]] == [a]

    # History, by the minute from the rollups (the default: the last hour), and raw.
    by_minute = await gateway.get(f"/v1/telemetry/nodes/{a}/history")
    assert by_minute.status_code == 200, by_minute.text
    history = by_minute.json()
    assert (history["node_id"], history["source"], history["step_seconds"]) == (a, "rollup", 60)
    points = [
        (datetime.fromisoformat(p["timestamp"]), p["samples"], p["cpu"]) for p in history["points"]
    ]
    assert points == [
        (base, 2, pytest.approx(0.3)),
        (base + timedelta(minutes=1), 1, pytest.approx(0.6)),
    ]
    raw = await gateway.get(
        f"/v1/telemetry/nodes/{a}/history",
        params={
            "from": (base - timedelta(minutes=1)).isoformat(),
            "to": (base + timedelta(minutes=5)).isoformat(),
            "step": 10,
        },
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["source"] == "raw"
    assert [p["cpu"] for p in raw.json()["points"]] == pytest.approx([0.2, 0.4, 0.6])

    # Topology: the mesh's nodes and every reported link with its quality.
    topology = await gateway.get("/v1/telemetry/topology", params={"mesh_id": mesh})
    assert topology.status_code == 200, topology.text
    body = topology.json()
    assert {n["node_id"] for n in body["nodes"]} == {a, b, c}
    links = {(link["source"], link["target"]): link["link_quality"] for link in body["links"]}
    assert links == {(a, b): 0.9, (b, a): 0.7, (b, c): 0.3}


async def _node_with_metrics(gateway: httpx.AsyncClient, node_id: str) -> dict[str, Any]:
    state = await node(gateway, node_id)
    assert state["metrics"] is not None
    assert state["last_heartbeat"] is not None
    return state


async def test_a_resent_batch_is_counted_once_and_old_events_never_regress_state(
    gateway: httpx.AsyncClient,
) -> None:
    # What the 503 answer promises: re-sending the batch is safe.
    run = uuid.uuid4().hex[:8]
    mesh, a = f"mesh-{run}", f"{run}-a"
    now = datetime.now(UTC).replace(microsecond=0)
    minute = now.replace(second=0) - timedelta(minutes=5)
    batch = [
        heartbeat(a, mesh, now - timedelta(seconds=10)),
        metrics(a, mesh, minute + timedelta(seconds=10), 0.1, {}),
        metrics(a, mesh, minute + timedelta(seconds=40), 0.3, {}),
    ]
    await post(gateway, batch)
    await post(gateway, batch)
    # An older heartbeat saying "degraded" comes late, then a newer one. The node's
    # events share a key, hence a partition: once the newest shows, all came before it.
    await post(gateway, [heartbeat(a, mesh, now - timedelta(seconds=30), status="degraded")])
    await post(gateway, [heartbeat(a, mesh, now)])

    async def newest_heartbeat_seen() -> dict[str, Any]:
        state = await node(gateway, a)
        assert datetime.fromisoformat(state["last_heartbeat"]) == now
        return state

    state = await eventually(newest_heartbeat_seen)
    assert (state["status"], state["reported_status"]) == ("up", "up")
    history = await gateway.get(f"/v1/telemetry/nodes/{a}/history")
    assert [(p["samples"], p["cpu"]) for p in history.json()["points"]] == [(2, pytest.approx(0.2))]


async def test_bad_input_is_a_problem_and_nothing_of_it_is_stored(
    gateway: httpx.AsyncClient,
) -> None:
    run = uuid.uuid4().hex[:8]
    mesh, a = f"mesh-{run}", f"{run}-a"
    now = datetime.now(UTC).replace(microsecond=0)

    malformed = await gateway.post(
        "/v1/telemetry/events",
        json={"events": [{**heartbeat(a, mesh, now), "timestamp": "2026-11-27T12:00:00"}]},
    )
    assert malformed.status_code == 422
    assert malformed.headers["content-type"] == "application/problem+json"
    assert malformed.json()["code"] == "validation"

    future = await gateway.post(
        "/v1/telemetry/events",
        json={
            "events": [
                heartbeat(a, mesh, now, status="draining"),
                heartbeat(a, mesh, now + timedelta(hours=2)),
            ]
        },
    )
    assert future.status_code == 400
    assert future.headers["content-type"] == "application/problem+json"
    problem = future.json()
    assert (problem["code"], problem["details"]["index"]) == ("invalid_input", 1)

    # A later, older heartbeat of the same node (same partition) is all there is: the
    # refused batch's valid, newer event was not published either.
    marker = now - timedelta(seconds=5)
    await post(gateway, [heartbeat(a, mesh, marker)])

    async def marker_seen() -> dict[str, Any]:
        response = await gateway.get(f"/v1/telemetry/nodes/{a}")
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    state = await eventually(marker_seen)
    assert datetime.fromisoformat(state["last_heartbeat"]) == marker
    assert state["reported_status"] == "up"


async def test_unknown_nodes_and_bad_queries_are_problems(gateway: httpx.AsyncClient) -> None:
    missing = await gateway.get(f"/v1/telemetry/nodes/never-{uuid.uuid4().hex[:8]}")
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "not_found"

    backwards = await gateway.get(
        "/v1/telemetry/nodes/n1/history",
        params={"from": "2026-11-27T12:00:00Z", "to": "2026-11-27T11:00:00Z"},
    )
    assert backwards.status_code == 422
    assert backwards.json()["code"] == "validation"

    no_mesh = await gateway.get("/v1/telemetry/topology")
    assert no_mesh.status_code == 422
    assert no_mesh.json()["details"]["errors"][0]["loc"] == ["query", "mesh_id"]
