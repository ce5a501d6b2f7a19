"""Run one telemetry worker replica: ``python -m x0_telemetry``."""

from __future__ import annotations

import uvicorn

from x0_common.logs import setup_logging
from x0_common.tracing import setup_tracing
from x0_telemetry.app import create_app
from x0_telemetry.settings import TelemetrySettings


def main() -> None:
    """Start the worker with JSON logs and tracing from the environment."""
    settings = TelemetrySettings()
    setup_logging("telemetry", settings.common.log_level)
    provider = setup_tracing("x0-telemetry")
    app = create_app(settings, tracer_provider=provider)
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)


if __name__ == "__main__":
    main()
