"""The time rules both the gateway and the telemetry worker apply to telemetry events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from x0_common.errors import InvalidInput
from x0_common.events.telemetry import (
    BeyondRetention,
    FutureTimestamp,
    NodeHeartbeat,
    check_timestamp,
    history_steps,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SKEW = timedelta(seconds=300)
RETENTION = timedelta(days=7)


def heartbeat(at: datetime) -> NodeHeartbeat:
    return NodeHeartbeat(node_id="n1", mesh_id="m1", timestamp=at, software_version="1")


@pytest.mark.parametrize(
    "offset",
    [timedelta(), SKEW, -RETENTION, -timedelta(days=3)],
    ids=["now", "at the skew", "at the retention", "late"],
)
def test_events_inside_the_window_pass(offset: timedelta) -> None:
    check_timestamp(heartbeat(NOW + offset), max_skew=SKEW, retention=RETENTION, now=NOW)


def test_an_event_past_the_skew_is_a_future_timestamp() -> None:
    with pytest.raises(FutureTimestamp) as raised:
        check_timestamp(
            heartbeat(NOW + SKEW + timedelta(seconds=1)),
            max_skew=SKEW,
            retention=RETENTION,
            now=NOW,
        )
    assert isinstance(raised.value, InvalidInput)
    assert raised.value.details == {"field": "timestamp"}


def test_an_event_before_the_retention_is_beyond_retention() -> None:
    with pytest.raises(BeyondRetention, match="7-day retention"):
        check_timestamp(
            heartbeat(NOW - RETENTION - timedelta(seconds=1)),
            max_skew=SKEW,
            retention=RETENTION,
            now=NOW,
        )


@pytest.mark.parametrize(
    ("start", "end", "step", "steps"),
    [
        (NOW, NOW + timedelta(hours=1), 60, 60),
        # Off the step's edges, the touched steps at both ends count.
        (NOW + timedelta(seconds=30), NOW + timedelta(minutes=1, seconds=30), 60, 2),
        (NOW, NOW + timedelta(seconds=10), 3600, 1),
        (NOW, NOW + timedelta(days=7), 60, 10_080),
    ],
)
def test_history_steps_count_every_epoch_aligned_step_the_window_touches(
    start: datetime, end: datetime, step: int, steps: int
) -> None:
    assert history_steps(start, end, step) == steps
