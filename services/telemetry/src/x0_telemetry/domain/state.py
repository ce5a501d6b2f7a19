"""A node's latest state: what the ingest stores per event, and what a reader derives.

The latest state of a node is a flat map of text fields (a Redis hash):

- ``mesh_id``, ``seen_ms``: the mesh of the node's newest event of either kind;
- ``hb_ms``, ``status``, ``version``: from its newest heartbeat;
- ``m_ms``, ``cpu``, ``memory``, ``rtt_ms``, ``packet_loss``, ``throughput_bps``,
  ``neighbours`` (JSON): from its newest metrics.

Each group is replaced only by a strictly newer event of its kind, so an event that
arrives late (or again) never regresses it. The derived status is ``down`` when the
last heartbeat is older than the down timeout, or when there is none; otherwise
the status the node reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter

from x0_common.events.telemetry import (
    FIGURES,
    LatestMetrics,
    Link,
    Neighbour,
    NodeHeartbeat,
    NodeMetrics,
    NodeState,
    NodeStatus,
    ReportedStatus,
)

_NEIGHBOURS = TypeAdapter(list[Neighbour])


def epoch_ms(instant: datetime) -> int:
    """Milliseconds since the epoch (the latest state's clock)."""
    return round(instant.timestamp() * 1000)


def from_epoch_ms(value: int | str) -> datetime:
    """The UTC instant of ``value`` milliseconds since the epoch."""
    return datetime.fromtimestamp(int(value) / 1000, tz=UTC)


def neighbours_json(event: NodeMetrics) -> str:
    """The event's neighbours as compact JSON (stored in both PostgreSQL and Redis)."""
    return _NEIGHBOURS.dump_json(event.neighbours, exclude_none=True).decode()


def derive_status(
    reported: ReportedStatus | None,
    last_heartbeat: datetime | None,
    *,
    now: datetime,
    down_timeout: timedelta,
) -> NodeStatus:
    """``down`` without a heartbeat within ``down_timeout``; else what the node reported."""
    if reported is None or last_heartbeat is None or now - last_heartbeat > down_timeout:
        return "down"
    return reported


def newest_per_node(
    events: Iterable[NodeHeartbeat | NodeMetrics],
) -> list[NodeHeartbeat | NodeMetrics]:
    """The newest heartbeat and the newest metrics of each node (older ones change nothing)."""
    newest: dict[tuple[str, str], NodeHeartbeat | NodeMetrics] = {}
    for event in events:
        key = (event.node_id, event.kind)
        current = newest.get(key)
        if current is None or event.timestamp > current.timestamp:
            newest[key] = event
    return list(newest.values())


def latest_update(event: NodeHeartbeat | NodeMetrics) -> dict[str, Any]:
    """The fields one event would set in its node's latest state (``k``: h or m)."""
    update: dict[str, Any] = {
        "n": event.node_id,
        "m": event.mesh_id,
        "t": epoch_ms(event.timestamp),
    }
    if isinstance(event, NodeHeartbeat):
        update |= {"k": "h", "status": event.status, "version": event.software_version}
    else:
        update |= {
            "k": "m",
            **{name: repr(getattr(event, name)) for name in FIGURES},
            "neighbours": neighbours_json(event),
        }
    return update


def node_state(
    node_id: str, fields: Mapping[str, str], *, now: datetime, down_timeout: timedelta
) -> NodeState:
    """The state a reader sees, from the stored fields of one node."""
    last_heartbeat = from_epoch_ms(fields["hb_ms"]) if fields.get("hb_ms") else None
    reported = fields.get("status") if last_heartbeat is not None else None
    metrics = None
    neighbours: list[Neighbour] = []
    if fields.get("m_ms"):
        metrics = LatestMetrics.model_validate(
            {
                "timestamp": from_epoch_ms(fields["m_ms"]),
                **{name: float(fields[name]) for name in FIGURES},
            }
        )
        neighbours = _NEIGHBOURS.validate_json(fields.get("neighbours") or "[]")
    return NodeState(
        node_id=node_id,
        mesh_id=fields["mesh_id"],
        status=derive_status(
            reported,  # type: ignore[arg-type]  # stored from a validated ReportedStatus
            last_heartbeat,
            now=now,
            down_timeout=down_timeout,
        ),
        reported_status=reported,  # type: ignore[arg-type]
        software_version=fields.get("version") if last_heartbeat is not None else None,
        last_heartbeat=last_heartbeat,
        metrics=metrics,
        neighbours=neighbours,
    )


def links_of(nodes: Iterable[NodeState]) -> list[Link]:
    """Every link the nodes report, one per (reporting node, neighbour), in order."""
    return [
        Link(source=node.node_id, target=n.node_id, link_quality=n.link_quality, rtt_ms=n.rtt_ms)
        for node in sorted(nodes, key=lambda s: s.node_id)
        for n in sorted(node.neighbours, key=lambda n: n.node_id)
    ]


def mean_link_quality(node: NodeState) -> float | None:
    """Mean quality of the node's reported links, or None when it reports none."""
    if not node.neighbours:
        return None
    return sum(n.link_quality for n in node.neighbours) / len(node.neighbours)
