"""What the ingest, the handlers and the background loops share, opened at start-up."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import redis.asyncio as aioredis

from x0_telemetry.adapters.history import HistoryStore
from x0_telemetry.adapters.latest import LatestStore
from x0_telemetry.metrics import TelemetryMetrics
from x0_telemetry.retention import Partitions
from x0_telemetry.settings import TelemetrySettings


@dataclass
class TelemetryDeps:
    """Settings and metrics from the start; pools and stores once start-up opened them."""

    settings: TelemetrySettings
    metrics: TelemetryMetrics
    pool: asyncpg.Pool | None = None
    redis: aioredis.Redis | None = None
    history_store: HistoryStore | None = None
    latest_store: LatestStore | None = None
    partitions_store: Partitions | None = None

    @property
    def history(self) -> HistoryStore:
        """The PostgreSQL history (raises before start-up)."""
        assert self.history_store is not None, "used before start-up"
        return self.history_store

    @property
    def latest(self) -> LatestStore:
        """The Redis latest state (raises before start-up)."""
        assert self.latest_store is not None, "used before start-up"
        return self.latest_store

    @property
    def partitions(self) -> Partitions:
        """The daily partitions (raises before start-up)."""
        assert self.partitions_store is not None, "used before start-up"
        return self.partitions_store
