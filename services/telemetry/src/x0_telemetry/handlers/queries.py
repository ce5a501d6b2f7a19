"""Queries on ``x0.telemetry.requests`` (request/reply): nodes, one node, history, topology.

=========================================== ============= ==== ==========================
case                                        code          HTTP details
=========================================== ============= ==== ==========================
node get: unknown, or its state expired     not_found     404  ``reason: node_not_found``
history: ``end <= start``                   invalid_input 400  ``field: end``
history: more than MAX_HISTORY_POINTS steps invalid_input 400  ``field: step_seconds``
PostgreSQL or Redis unreachable (retried)   unavailable   503  ``reason: postgres|redis``
=========================================== ============= ==== ==========================

Every query reads the caller's tenant's nodes only (``context.tenant``): another
tenant's node is ``not_found``, its meshes and links are not listed.

Lists hold the nodes whose latest state has not expired (``latest_ttl_seconds``),
in ``node_id`` order; the status filter applies to the derived status. Topology
lists every link the mesh's nodes report, including links to nodes outside the
mesh or not (or no longer) known.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from x0_common.contract import Telemetry
from x0_common.events.telemetry import (
    History,
    HistoryRequest,
    ListNodesRequest,
    NodeList,
    NodeRequest,
    NodeState,
    Topology,
    TopologyRequest,
)
from x0_common.kafka import RequestContext, Responder
from x0_telemetry.deps import TelemetryDeps
from x0_telemetry.domain.history import plan_history
from x0_telemetry.domain.state import epoch_ms, links_of, node_state
from x0_telemetry.errors import NotFound


async def read_nodes(deps: TelemetryDeps, tenant: str, mesh_id: str | None) -> list[NodeState]:
    """Every live node of ``tenant`` (of one mesh, or all), with derived status, in node
    id order."""
    now = datetime.now(UTC)
    now_ms = epoch_ms(now)
    latest = deps.latest.of(tenant)
    meshes = [mesh_id] if mesh_id is not None else await latest.meshes(now_ms)
    down_timeout = timedelta(seconds=deps.settings.down_timeout_seconds)
    return [
        node_state(node_id, fields, now=now, down_timeout=down_timeout)
        for node_id, fields in await latest.nodes(meshes, now_ms)
    ]


def register(responder: Responder, deps: TelemetryDeps) -> None:
    """Register the four queries on ``responder``."""

    @responder.operation(Telemetry.NODES_LIST)
    async def on_list(request: ListNodesRequest, context: RequestContext) -> NodeList:
        nodes = await read_nodes(deps, context.tenant, request.mesh_id)
        if request.status is not None:
            nodes = [node for node in nodes if node.status == request.status]
        return NodeList(nodes=nodes[: request.limit])

    @responder.operation(Telemetry.NODE_GET)
    async def on_get(request: NodeRequest, context: RequestContext) -> NodeState:
        fields = await deps.latest.of(context.tenant).node(request.node_id)
        if not fields:
            raise NotFound(
                "no such node", details={"reason": "node_not_found", "node_id": request.node_id}
            )
        down_timeout = timedelta(seconds=deps.settings.down_timeout_seconds)
        return node_state(request.node_id, fields, now=datetime.now(UTC), down_timeout=down_timeout)

    @responder.operation(Telemetry.NODE_HISTORY)
    async def on_history(request: HistoryRequest, context: RequestContext) -> History:
        plan = plan_history(request)
        points = await deps.history.history(plan, tenant=context.tenant)
        return History(
            node_id=request.node_id,
            step_seconds=plan.step_seconds,
            source=plan.source,
            points=points,
        )

    @responder.operation(Telemetry.TOPOLOGY_GET)
    async def on_topology(request: TopologyRequest, context: RequestContext) -> Topology:
        nodes = await read_nodes(deps, context.tenant, request.mesh_id)
        return Topology(mesh_id=request.mesh_id, nodes=nodes, links=links_of(nodes))
