"""Pure telemetry logic: record checks, derived status, history plans, the series cap."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from x0_common.contract import Telemetry
from x0_common.errors import InvalidInput
from x0_common.events.telemetry import (
    MAX_HISTORY_POINTS,
    HistoryRequest,
    NodeHeartbeat,
    NodeMetrics,
)
from x0_telemetry.domain.events import Limits, Refused, check_record
from x0_telemetry.domain.history import plan_history
from x0_telemetry.domain.series import OTHER_MESHES, SeriesCap, counts_by_mesh
from x0_telemetry.domain.state import (
    derive_status,
    epoch_ms,
    latest_update,
    links_of,
    newest_per_node,
    node_state,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
LIMITS = Limits(max_clock_skew=timedelta(minutes=5), retention=timedelta(days=7))


def _heartbeat(at: datetime = NOW, **fields: object) -> bytes:
    body = {
        "node_id": "n1",
        "mesh_id": "m1",
        "timestamp": at.isoformat(),
        "software_version": "1.0",
        **fields,
    }
    return json.dumps(body).encode()


def _check(
    value: bytes, message_type: str = Telemetry.HEARTBEAT.message_type, **headers: bytes
) -> object:
    raw = [("x0-type", message_type.encode()), *headers.items()]
    return check_record(raw, value, limits=LIMITS, now=NOW)


def test_a_valid_heartbeat_is_accepted() -> None:
    event = _check(_heartbeat())
    assert isinstance(event, NodeHeartbeat)
    assert event.status == "up"


@pytest.mark.parametrize(
    ("value", "message_type", "reason"),
    [
        (b"{oops", Telemetry.HEARTBEAT.message_type, "undecodable"),
        (_heartbeat(), "telemetry.node.other.v1", "unknown_type"),
        (_heartbeat(), "", "unknown_type"),
        (_heartbeat(status="down"), Telemetry.HEARTBEAT.message_type, "schema_mismatch"),
        (_heartbeat(), Telemetry.METRICS.message_type, "schema_mismatch"),  # kind vs header
        (_heartbeat(NOW.replace(tzinfo=None)), Telemetry.HEARTBEAT.message_type, "schema_mismatch"),
        (
            json.dumps({"node_id": "n1"}).encode(),
            Telemetry.HEARTBEAT.message_type,
            "schema_mismatch",
        ),
        (
            _heartbeat(NOW + timedelta(minutes=6)),
            Telemetry.HEARTBEAT.message_type,
            "future_timestamp",
        ),
        (
            _heartbeat(NOW - timedelta(days=7, seconds=1)),
            Telemetry.HEARTBEAT.message_type,
            "beyond_retention",
        ),
    ],
)
def test_bad_records_are_refused_with_a_reason(
    value: bytes, message_type: str, reason: str
) -> None:
    refused = _check(value, message_type)
    assert isinstance(refused, Refused)
    assert refused.reason == reason
    assert "n1" not in refused.detail  # details name fields, never values


def test_within_the_skew_is_accepted() -> None:
    assert isinstance(_check(_heartbeat(NOW + timedelta(minutes=4))), NodeHeartbeat)


def test_a_header_that_is_not_utf8_is_refused_but_the_others_are_kept() -> None:
    refused = _check(_heartbeat(), **{"x0-bad": b"\xff", "traceparent": b"00-ab"})
    assert isinstance(refused, Refused)
    assert refused.reason == "undecodable"
    assert refused.headers["traceparent"] == "00-ab"
    assert "x0-bad" not in refused.headers


def test_status_is_down_without_a_recent_heartbeat() -> None:
    timeout = timedelta(seconds=30)
    assert derive_status(
        "degraded", NOW - timedelta(seconds=29), now=NOW, down_timeout=timeout
    ) == ("degraded")
    assert derive_status("up", NOW - timedelta(seconds=31), now=NOW, down_timeout=timeout) == "down"
    assert derive_status(None, None, now=NOW, down_timeout=timeout) == "down"


def test_node_state_from_stored_fields() -> None:
    metrics = NodeMetrics(
        node_id="n1",
        mesh_id="m1",
        timestamp=NOW,
        cpu=0.5,
        memory=0.25,
        rtt_ms=3.0,
        packet_loss=0.0,
        throughput_bps=10.0,
        neighbours=[{"node_id": "n2", "link_quality": 0.5}],  # type: ignore[list-item]
    )
    fields = {k: str(v) for k, v in latest_update(metrics).items()}
    stored = {
        "mesh_id": "m1",
        "m_ms": fields["t"],
        **{
            k: fields[k]
            for k in ("cpu", "memory", "rtt_ms", "packet_loss", "throughput_bps", "neighbours")
        },
        "hb_ms": str(epoch_ms(NOW - timedelta(seconds=5))),
        "status": "draining",
        "version": "9",
    }
    state = node_state("n1", stored, now=NOW, down_timeout=timedelta(seconds=30))
    assert state.status == "draining"
    assert state.metrics is not None
    assert state.metrics.cpu == 0.5
    assert state.metrics.timestamp == NOW
    assert [link.target for link in links_of([state])] == ["n2"]
    only_metrics = {k: v for k, v in stored.items() if k not in {"hb_ms", "status", "version"}}
    assert node_state("n1", only_metrics, now=NOW, down_timeout=timedelta(seconds=30)).status == (
        "down"
    )


def test_only_the_newest_event_per_node_and_kind_goes_to_redis() -> None:
    def hb(node: str, seconds: int) -> NodeHeartbeat:
        return NodeHeartbeat(
            node_id=node,
            mesh_id="m",
            timestamp=NOW + timedelta(seconds=seconds),
            software_version="1",
        )

    newest = newest_per_node([hb("a", 2), hb("a", 5), hb("a", 1), hb("b", 0)])
    assert sorted((e.node_id, e.timestamp.second) for e in newest) == [("a", 5), ("b", 0)]


def test_history_uses_rollups_for_whole_minutes_and_raw_otherwise() -> None:
    def plan(step: int, minutes: int = 60) -> object:
        return plan_history(
            HistoryRequest(
                node_id="n", start=NOW, end=NOW + timedelta(minutes=minutes), step_seconds=step
            )
        )

    assert plan(60).source == "rollup"  # type: ignore[attr-defined]
    assert plan(3600).source == "rollup"  # type: ignore[attr-defined]
    assert plan(10).source == "raw"  # type: ignore[attr-defined]
    assert plan(90).source == "raw"  # type: ignore[attr-defined]


def test_history_buckets_are_aligned_and_bounded() -> None:
    request = HistoryRequest(
        node_id="n",
        start=NOW + timedelta(seconds=25),
        end=NOW + timedelta(seconds=125),
        step_seconds=60,
    )
    plan = plan_history(request)
    assert plan.range_start == NOW
    assert plan.range_end == NOW + timedelta(seconds=180)
    assert plan.buckets == 3
    with pytest.raises(InvalidInput):
        plan_history(HistoryRequest(node_id="n", start=NOW, end=NOW, step_seconds=60))
    too_long = timedelta(seconds=10 * (MAX_HISTORY_POINTS + 1))
    with pytest.raises(InvalidInput):
        plan_history(HistoryRequest(node_id="n", start=NOW, end=NOW + too_long, step_seconds=10))
    at_limit = timedelta(seconds=10 * MAX_HISTORY_POINTS)
    assert (
        plan_history(
            HistoryRequest(node_id="n", start=NOW, end=NOW + at_limit, step_seconds=10)
        ).buckets
        == MAX_HISTORY_POINTS
    )


def test_the_series_cap_keeps_its_nodes_and_counts_refusals_once() -> None:
    cap = SeriesCap(3)
    first = cap.refresh(["d", "a", "c", "b", "e"])
    assert first.tracked == ["a", "b", "c"]
    assert first.newly_refused == 2
    again = cap.refresh(["a", "b", "c", "d", "e", "f"])
    assert again.tracked == ["a", "b", "c"]
    assert again.newly_refused == 1  # only f is new
    # b leaves: its place goes to the first waiting node.
    after = cap.refresh(["a", "c", "d", "e", "f"])
    assert after.removed == ["b"]
    assert after.tracked == ["a", "c", "d"]
    assert SeriesCap(0).refresh(["x"]).tracked == []


def test_meshes_past_the_cap_are_counted_together_and_no_node_is_lost() -> None:
    nodes = [(f"fake-{i:03d}", "down") for i in range(50)] + [("lab", "up"), ("lab", "down")]
    kept = SeriesCap(2).refresh({mesh for mesh, _ in nodes}).tracked
    counts = counts_by_mesh(nodes, kept)
    assert kept == ["fake-000", "fake-001"]
    # Two meshes of their own plus one "_other" label: 3 per status, not 51.
    assert {mesh for mesh, _ in counts} == {"fake-000", "fake-001", OTHER_MESHES}
    assert counts[(OTHER_MESHES, "down")] == 49
    assert counts[(OTHER_MESHES, "up")] == 1
    assert sum(counts.values()) == len(nodes)
