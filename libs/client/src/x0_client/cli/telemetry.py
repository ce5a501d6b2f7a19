"""``x0 telemetry``: mesh nodes, their history and topology; sending events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from pydantic import TypeAdapter

from x0_client.cli.output import (
    JsonOption,
    print_fields,
    print_json,
    print_line,
    print_table,
    read_text,
    show,
)
from x0_client.cli.state import state
from x0_common.events import telemetry as t

app = typer.Typer(help="Mesh telemetry: nodes, history, topology, events.", no_args_is_help=True)

NodeId = Annotated[str, typer.Argument(help="The node's id.", show_default=False)]
_NODE_COLUMNS = ("node", "mesh", "status", "version", "last heartbeat", "cpu", "memory", "rtt ms")
_EVENTS: TypeAdapter[list[t.NodeHeartbeat | t.NodeMetrics]] = TypeAdapter(list[t.TelemetryEvent])


def _node_row(node: t.NodeState) -> tuple[Any, ...]:
    metrics = node.metrics
    heartbeat = node.last_heartbeat.isoformat(timespec="seconds") if node.last_heartbeat else None
    figures = (metrics.cpu, metrics.memory, metrics.rtt_ms) if metrics else (None, None, None)
    return (node.node_id, node.mesh_id, node.status, node.software_version, heartbeat, *figures)


@app.command()
def nodes(
    context: typer.Context,
    *,
    mesh: Annotated[str | None, typer.Option(help="Only this mesh's nodes.")] = None,
    status: Annotated[t.NodeStatus | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option(min=1, max=t.MAX_NODES_PER_LIST)] = 1000,
    as_json: JsonOption = False,
) -> None:
    """Nodes seen lately, in node_id order (the API has no cursor: at most --limit).

    Examples:

        x0 telemetry nodes --mesh lab --status up

        x0 telemetry nodes --json
    """
    with state(context).client() as x0:
        listed = x0.list_nodes(mesh_id=mesh, status=status, limit=limit)
    if as_json:
        print_json(listed)
    else:
        print_table(_NODE_COLUMNS, (_node_row(n) for n in listed.nodes))


@app.command()
def node(context: typer.Context, *, node_id: NodeId, as_json: JsonOption = False) -> None:
    """A node's latest state.

    Example:

        x0 telemetry node n1
    """
    with state(context).client() as x0:
        show(x0.get_node(node_id=node_id), as_json=as_json, human=_print_node)


def _print_node(found: t.NodeState) -> None:
    print_fields(found, skip=("neighbours",))
    if found.neighbours:
        print_table(
            ("neighbour", "link quality", "rtt ms"),
            ((n.node_id, n.link_quality, n.rtt_ms) for n in found.neighbours),
        )


def _instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@app.command()
def history(
    context: typer.Context,
    *,
    node_id: NodeId,
    start: Annotated[
        str | None, typer.Option("--from", help="ISO 8601 (default --to - 1 h).")
    ] = None,
    end: Annotated[str | None, typer.Option("--to", help="ISO 8601 (default now).")] = None,
    step: Annotated[int, typer.Option(min=t.MIN_STEP_SECONDS, help="Seconds per point.")] = 60,
    as_json: JsonOption = False,
) -> None:
    """A node's metrics over time, one point per step (times without offset are UTC).

    Examples:

        x0 telemetry history n1

        x0 telemetry history n1 --from 2026-11-27T18:00:00Z --to 2026-11-27T19:00:00Z --step 300
    """
    until = _instant(end) or datetime.now(UTC)
    since = _instant(start) or until - timedelta(hours=1)
    with state(context).client() as x0:
        found = x0.node_history(node_id=node_id, start=since, end=until, step_seconds=step)
    show(found, as_json=as_json, human=_print_history)


def _print_history(found: t.History) -> None:
    print_table(
        ("time", "samples", "cpu", "memory", "rtt ms", "loss", "throughput bps"),
        (
            (
                p.timestamp.isoformat(timespec="seconds"),
                p.samples,
                p.cpu,
                p.memory,
                p.rtt_ms,
                p.packet_loss,
                p.throughput_bps,
            )
            for p in found.points
        ),
        title=f"{found.node_id}: {len(found.points)} points ({found.source})",
    )


@app.command()
def topology(
    context: typer.Context,
    *,
    mesh: Annotated[str, typer.Argument(show_default=False)],
    as_json: JsonOption = False,
) -> None:
    """A mesh's nodes and the links they report.

    Example:

        x0 telemetry topology lab
    """
    with state(context).client() as x0:
        show(x0.topology(mesh_id=mesh), as_json=as_json, human=_print_topology)


def _print_topology(found: t.Topology) -> None:
    print_table(_NODE_COLUMNS, (_node_row(n) for n in found.nodes), title=f"mesh {found.mesh_id}")
    print_table(
        ("from", "to", "link quality", "rtt ms"),
        ((link.source, link.target, link.link_quality, link.rtt_ms) for link in found.links),
    )


def _events_of(text: str) -> list[t.NodeHeartbeat | t.NodeMetrics]:
    """Events from ``{"events": [...]}``, a JSON list, one JSON event, or JSON lines."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        document = [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(document, dict):
        document = document.get("events", [document])
    return _EVENTS.validate_python(document)


EventsSource = Annotated[
    str | None, typer.Argument(help="JSON ({events: [...]} or a list) or JSONL; '-': stdin.")
]
HeartbeatNode = Annotated[str | None, typer.Option(help="Send one heartbeat now for this node.")]
SoftwareVersion = Annotated[str, typer.Option(help="The heartbeat's software version.")]


@app.command()
def send(
    context: typer.Context,
    *,
    source: EventsSource = None,
    heartbeat: HeartbeatNode = None,
    mesh: Annotated[str | None, typer.Option(help="The heartbeat's mesh.")] = None,
    software_version: SoftwareVersion = "x0-cli",
    status: Annotated[t.ReportedStatus, typer.Option()] = "up",
    as_json: JsonOption = False,
) -> None:
    """Publish heartbeats and metrics events (answered once Kafka holds every one).

    Examples:

        x0 telemetry send --heartbeat n1 --mesh lab

        x0 telemetry send events.jsonl

        generate-events | x0 telemetry send -
    """
    if heartbeat is not None:
        if mesh is None:
            raise typer.BadParameter("--heartbeat needs --mesh", param_hint="--mesh")
        events: list[t.NodeHeartbeat | t.NodeMetrics] = [
            t.NodeHeartbeat(
                node_id=heartbeat,
                mesh_id=mesh,
                timestamp=datetime.now(UTC),
                status=status,
                software_version=software_version,
            )
        ]
    elif source is not None:
        events = _events_of(read_text(source))
    else:
        raise typer.BadParameter("give a file of events, or --heartbeat NODE --mesh MESH")
    with state(context).client() as x0:
        accepted = x0.publish_events(events=events)
    print_json(accepted) if as_json else print_line(f"accepted {accepted.accepted} events")
