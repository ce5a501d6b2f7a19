"""Planning a history query: which table answers it, and over which buckets.

Points are means over buckets of ``step_seconds`` aligned to the Unix epoch; a
query covers every bucket that overlaps ``[start, end)``, so its range is
``[floor(start / step) * step, ceil(end / step) * step)``, and buckets with no
metrics event are left out. When the step is a whole number of minutes the bucket
edges are minute edges, so the per-minute rollups answer exactly what the raw
events would; any other step (10 s, 90 s...) reads the raw events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from x0_common.events.telemetry import (
    MAX_HISTORY_POINTS,
    ROLLUP_STEP_SECONDS,
    HistoryRequest,
    history_steps,
)
from x0_telemetry.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class HistoryPlan:
    """What to read for one history request."""

    node_id: str
    source: Literal["rollup", "raw"]
    step_seconds: int
    range_start: datetime
    range_end: datetime

    @property
    def buckets(self) -> int:
        """How many points the answer can have at most."""
        return round((self.range_end - self.range_start).total_seconds()) // self.step_seconds


def plan_history(request: HistoryRequest) -> HistoryPlan:
    """The plan for ``request``; :class:`InvalidInput` for an empty or too long range."""
    if request.end <= request.start:
        raise InvalidInput("end must be after start", details={"field": "end"})
    step = request.step_seconds
    points = history_steps(request.start, request.end, step)
    first = int(request.start.timestamp() // step) * step
    last = first + points * step
    if points > MAX_HISTORY_POINTS:
        raise InvalidInput(
            f"the range holds {points} steps; at most {MAX_HISTORY_POINTS} are allowed",
            details={"field": "step_seconds", "points": points, "max": MAX_HISTORY_POINTS},
        )
    rollup = step >= ROLLUP_STEP_SECONDS and step % ROLLUP_STEP_SECONDS == 0
    return HistoryPlan(
        node_id=request.node_id,
        source="rollup" if rollup else "raw",
        step_seconds=step,
        range_start=datetime.fromtimestamp(first, tz=UTC),
        range_end=datetime.fromtimestamp(last, tz=UTC),
    )
