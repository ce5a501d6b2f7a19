"""Messages of the telemetry service.

Topics:

- ``x0.telemetry.events`` — what mesh nodes and their agents report (upstream
  producers, or the gateway's ``POST /v1/telemetry/events``). Keyed by ``node_id`` so
  one node's events stay in order; no reply. Malformed events go to
  ``x0.telemetry.events.dlq`` with the reason.
- ``x0.telemetry.requests`` — request/reply: node lists, one node, history, topology.

An event is identified by ``(node_id, timestamp, type)``: a redelivered or re-sent
event is stored once. Timestamps are timezone-aware UTC instants.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from x0_common.errors import InvalidInput
from x0_common.events.names import MeshId, NodeId
from x0_common.events.storable import StorableText

EVENTS_TOPIC: Final = "x0.telemetry.events"
REQUESTS_TOPIC: Final = "x0.telemetry.requests"
# Partitions of the events topic: whoever creates it first (the worker, or the gateway
# before its first publish) creates it with these, never the broker's default of one.
EVENTS_PARTITIONS: Final = 6
# History is kept this long; the gateway refuses, and the worker dead-letters, older events.
DEFAULT_RETENTION_DAYS: Final = 7
DEFAULT_MAX_CLOCK_SKEW_SECONDS: Final = 300

MAX_NEIGHBOURS = 64
MAX_EVENTS_PER_POST = 500
MAX_NODES_PER_LIST = 5000
MAX_HISTORY_POINTS = 11_000
# Steps a history query may ask for; at or above a minute the rollups answer it.
MIN_STEP_SECONDS = 10
ROLLUP_STEP_SECONDS = 60


# What a node says of itself; "down" is never reported, only derived (no heartbeat).
ReportedStatus = Literal["up", "degraded", "draining"]
NodeStatus = Literal["up", "degraded", "draining", "down"]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NodeHeartbeat(_Message):
    """A node is alive (``x0-type: telemetry.node.heartbeat.v1``)."""

    kind: Literal["heartbeat"] = "heartbeat"
    node_id: NodeId
    mesh_id: MeshId
    timestamp: AwareDatetime
    status: ReportedStatus = "up"
    software_version: StorableText = Field(min_length=1, max_length=64)


class Neighbour(_Message):
    """One link as the reporting node sees it."""

    node_id: NodeId
    link_quality: Ratio = Field(description="0 (unusable) to 1 (perfect)")
    rtt_ms: float | None = Field(default=None, ge=0.0, le=600_000.0)


class NodeMetrics(_Message):
    """A node's resource and network figures (``x0-type: telemetry.node.metrics.v1``)."""

    kind: Literal["metrics"] = "metrics"
    node_id: NodeId
    mesh_id: MeshId
    timestamp: AwareDatetime
    cpu: Ratio = Field(description="CPU busy fraction, 0 to 1")
    memory: Ratio = Field(description="memory used fraction, 0 to 1")
    rtt_ms: float = Field(ge=0.0, le=600_000.0, description="mean round trip to neighbours")
    packet_loss: Ratio
    throughput_bps: float = Field(ge=0.0, le=1e13, description="bits per second, both ways")
    neighbours: list[Neighbour] = Field(default_factory=list, max_length=MAX_NEIGHBOURS)


# The figures a metrics event reports, each also in LatestMetrics and HistoryPoint: the
# adapters store and read them by these names.
FIGURES: Final = ("cpu", "memory", "rtt_ms", "packet_loss", "throughput_bps")

TelemetryEvent = Annotated[NodeHeartbeat | NodeMetrics, Field(discriminator="kind")]


class FutureTimestamp(InvalidInput):
    """The event claims a time further ahead than the allowed clock skew."""


class BeyondRetention(InvalidInput):
    """The event is older than the history kept: it could never be stored."""


def check_timestamp(
    event: NodeHeartbeat | NodeMetrics,
    *,
    max_skew: timedelta,
    retention: timedelta,
    now: datetime | None = None,
) -> None:
    """Refuse an event stamped more than ``max_skew`` after ``now`` (UTC), or more than
    ``retention`` before it. The gateway and the worker apply the same rule."""
    now = now or datetime.now(UTC)
    if event.timestamp > now + max_skew:
        msg = f"timestamp is more than {max_skew.total_seconds():.0f} s in the future"
        raise FutureTimestamp(msg, details={"field": "timestamp"})
    if event.timestamp < now - retention:
        msg = f"timestamp is older than the {retention.days}-day retention"
        raise BeyondRetention(msg, details={"field": "timestamp"})


def history_steps(start: datetime, end: datetime, step_seconds: int) -> int:
    """How many epoch-aligned steps of ``step_seconds`` the window ``[start, end)`` touches
    (the most points a history answer can have)."""
    first = math.floor(start.timestamp() / step_seconds)
    last = math.ceil(end.timestamp() / step_seconds)
    return last - first


class PublishEvents(_Message):
    """``POST /v1/telemetry/events``: events for producers that cannot speak Kafka."""

    events: list[TelemetryEvent] = Field(min_length=1, max_length=MAX_EVENTS_PER_POST)


class EventsAccepted(_Message):
    """Every event is durably in ``x0.telemetry.events``."""

    accepted: int


# -- request/reply on x0.telemetry.requests --


class ListNodesRequest(_Message):
    """Nodes seen within the latest-state TTL, optionally of one mesh and status."""

    mesh_id: MeshId | None = None
    status: NodeStatus | None = None
    limit: int = Field(default=1000, ge=1, le=MAX_NODES_PER_LIST)


class NodeRequest(_Message):
    """One node's latest state."""

    node_id: NodeId


class HistoryRequest(_Message):
    """Metrics of one node between ``start`` and ``end``, one point per ``step_seconds``."""

    node_id: NodeId
    start: AwareDatetime
    end: AwareDatetime
    step_seconds: int = Field(default=ROLLUP_STEP_SECONDS, ge=MIN_STEP_SECONDS, le=86_400)


class TopologyRequest(_Message):
    """The nodes of one mesh and the links they report."""

    mesh_id: MeshId


class LatestMetrics(_Message):
    """The newest metrics event of a node, without its neighbours."""

    timestamp: AwareDatetime
    cpu: float
    memory: float
    rtt_ms: float
    packet_loss: float
    throughput_bps: float


class NodeState(_Message):
    """A node's latest state; ``status`` is ``down`` when its heartbeat is too old."""

    node_id: NodeId
    mesh_id: MeshId
    status: NodeStatus
    reported_status: ReportedStatus | None = None
    software_version: str | None = None
    last_heartbeat: AwareDatetime | None = None
    metrics: LatestMetrics | None = None
    neighbours: list[Neighbour] = Field(default_factory=list)


class NodeList(_Message):
    """Nodes in ``node_id`` order."""

    nodes: list[NodeState]


class HistoryPoint(_Message):
    """Means over one step (``samples`` metrics events fell in it)."""

    timestamp: AwareDatetime
    samples: int
    cpu: float
    memory: float
    rtt_ms: float
    packet_loss: float
    throughput_bps: float


class History(_Message):
    """A node's history; ``source`` says whether rollups or raw events answered."""

    node_id: NodeId
    step_seconds: int
    source: Literal["rollup", "raw"]
    points: list[HistoryPoint]


class Link(_Message):
    """A reported link; both directions appear when both ends report."""

    source: NodeId
    target: NodeId
    link_quality: float
    rtt_ms: float | None = None


class Topology(_Message):
    """One mesh: its nodes and links."""

    mesh_id: MeshId
    nodes: list[NodeState]
    links: list[Link]
