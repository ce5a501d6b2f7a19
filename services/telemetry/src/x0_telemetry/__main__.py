"""Run one telemetry worker replica: ``python -m x0_telemetry``."""

from __future__ import annotations

from x0_common.worker import run_worker
from x0_telemetry.app import create_app
from x0_telemetry.settings import TelemetrySettings


def main() -> None:
    """Start the worker with JSON logs and tracing from the environment."""
    run_worker("telemetry", TelemetrySettings(), create_app)


if __name__ == "__main__":
    main()
