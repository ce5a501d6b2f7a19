"""What the ingest, the handlers and the background jobs need: built with the app,
opened at start-up (typed fields)."""

from __future__ import annotations

from dataclasses import dataclass

from x0_common.resources import Opened, Stores
from x0_telemetry.adapters.history import HistoryStore
from x0_telemetry.adapters.latest import LatestStore
from x0_telemetry.adapters.partitions import Partitions
from x0_telemetry.metrics import SERVICE, TelemetryMetrics
from x0_telemetry.settings import TelemetrySettings


@dataclass(eq=False)
class TelemetryDeps:
    """Settings and metrics from the start; the stores once start-up opened them."""

    settings: TelemetrySettings
    metrics: TelemetryMetrics
    # The PostgreSQL pool (schema ``telemetry``) and Redis: opened by the worker builder.
    stores: Stores
    # On the open stores: opened by :meth:`open`.
    history = Opened[HistoryStore]("the telemetry history")
    latest = Opened[LatestStore]("the latest node state")
    partitions = Opened[Partitions]("the history partitions")

    async def open(self) -> None:
        """Build the history, latest-state and partition stores on the open stores."""
        settings = self.settings
        self.history = HistoryStore(self.stores.pool)
        self.latest = LatestStore(self.stores.redis, ttl_seconds=settings.latest_ttl_seconds)
        self.partitions = Partitions(
            self.stores.pool,
            retention_days=settings.retention_days,
            ahead_days=settings.partitions_ahead_days,
            on_drop=lambda _: self.metrics.partitions_dropped.labels(SERVICE).inc(),
        )
