"""The x0 dashboards: one per service and a Kafka overview, a module each.

Each module holds its dashboard's ``TITLE`` and ``panels()``; the dashboard named
``name`` has uid ``x0-<name>``, the tag ``name`` and is written to ``<name>.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from types import ModuleType

from grafana_foundation_sdk.models.dashboard import Dashboard
from panels import dashboard

from boards import crypto, gateway, kafka, rag, telemetry


def _build(name: str, board: ModuleType) -> Dashboard:
    return dashboard(f"x0-{name}", board.TITLE, name, board.panels())


DASHBOARDS: dict[str, Callable[[], Dashboard]] = {
    name: partial(_build, name, board)
    for name, board in {
        "gateway": gateway,
        "crypto": crypto,
        "rag": rag,
        "telemetry": telemetry,
        "kafka": kafka,
    }.items()
}
