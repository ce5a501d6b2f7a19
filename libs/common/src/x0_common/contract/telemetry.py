"""The telemetry service's operations.

Mesh nodes publish heartbeats and metrics to ``x0.telemetry.events`` (straight to
Kafka, or through ``POST /v1/telemetry/events``); operators query the stored state
with request/reply on ``x0.telemetry.requests``.
"""

from __future__ import annotations

from typing import Final

from x0_common.contract.operation import Http, Operation
from x0_common.contract.table import Table
from x0_common.errors import InvalidInput, NotFound, TooLarge
from x0_common.events import telemetry as t

_V1 = "/v1/telemetry"
_STORED = (
    "Stored once per (node_id, timestamp, type); an older event never replaces a newer "
    "state; a timestamp beyond the allowed clock skew, or a malformed event, goes to "
    f"`{t.EVENTS_TOPIC}.dlq` with the reason."
)
_NODE_KEY = "the node_id (one node's events stay in order)"


class Telemetry(Table):
    """Every telemetry operation."""

    HEARTBEAT = Operation(
        name="heartbeat",
        message_type="telemetry.node.heartbeat.v1",
        topic=t.EVENTS_TOPIC,
        request=t.NodeHeartbeat,
        result=None,
        summary="A mesh node is alive, with its reported status and software version. " + _STORED,
        scope="telemetry:write",
        delivery="publish",
        key=_NODE_KEY,
        producers=True,
    )
    METRICS = Operation(
        name="metrics",
        message_type="telemetry.node.metrics.v1",
        topic=t.EVENTS_TOPIC,
        request=t.NodeMetrics,
        result=None,
        summary="A mesh node's resource and network figures and its neighbours with link "
        "quality. " + _STORED,
        scope="telemetry:write",
        delivery="publish",
        key=_NODE_KEY,
        producers=True,
    )
    # Over HTTP, a batch of the two above: each event goes to Kafka as its own message
    # (``HEARTBEAT`` or ``METRICS`` by its kind); this x0-type names the route only.
    PUBLISH_EVENTS = Operation(
        name="publish_events",
        message_type="telemetry.events.publish.v1",
        topic=t.EVENTS_TOPIC,
        request=t.PublishEvents,
        result=t.EventsAccepted,
        summary="Publish node heartbeats and metrics; 202 once every event is durably in Kafka",
        scope="telemetry:write",
        http=Http("POST", f"{_V1}/events", status=202),
        errors=(InvalidInput, TooLarge),
        delivery="publish",
        key=_NODE_KEY,
        on_kafka=False,
    )
    NODES_LIST = Operation(
        name="list_nodes",
        message_type="telemetry.nodes.list.v1",
        topic=t.REQUESTS_TOPIC,
        request=t.ListNodesRequest,
        result=t.NodeList,
        summary="Nodes seen lately, optionally of one mesh and one status",
        scope="telemetry:read",
        http=Http("GET", f"{_V1}/nodes"),
    )
    NODE_GET = Operation(
        name="get_node",
        message_type="telemetry.nodes.get.v1",
        topic=t.REQUESTS_TOPIC,
        request=t.NodeRequest,
        result=t.NodeState,
        summary="A node's latest state",
        scope="telemetry:read",
        http=Http("GET", f"{_V1}/nodes/{{node_id}}"),
        errors=(NotFound,),
    )
    NODE_HISTORY = Operation(
        name="node_history",
        message_type="telemetry.nodes.history.v1",
        topic=t.REQUESTS_TOPIC,
        request=t.HistoryRequest,
        result=t.History,
        summary="A node's metrics over time, one point per step",
        scope="telemetry:read",
        http=Http("GET", f"{_V1}/nodes/{{node_id}}/history"),
        errors=(InvalidInput,),
    )
    TOPOLOGY_GET = Operation(
        name="topology",
        message_type="telemetry.topology.get.v1",
        topic=t.REQUESTS_TOPIC,
        request=t.TopologyRequest,
        result=t.Topology,
        summary="A mesh's nodes and the links they report, with link quality",
        scope="telemetry:read",
        http=Http("GET", f"{_V1}/topology"),
    )


# The message an event of each ``kind`` travels as.
OPERATION_OF_KIND: Final = {"heartbeat": Telemetry.HEARTBEAT, "metrics": Telemetry.METRICS}
