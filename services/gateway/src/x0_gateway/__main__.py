"""Run one gateway replica: ``python -m x0_gateway``."""

from __future__ import annotations

import uvicorn

from x0_common.logs import setup_logging
from x0_common.tracing import setup_tracing
from x0_gateway.app import create_app
from x0_gateway.limits.connections import server_config
from x0_gateway.metrics_server import metrics_server
from x0_gateway.settings import GatewaySettings


def main() -> None:
    """Start uvicorn with JSON logs and tracing from the environment, and the metrics
    server on its own port."""
    settings = GatewaySettings()
    setup_logging("gateway", settings.common.log_level)
    provider = setup_tracing("x0-gateway")
    app = create_app(settings, tracer_provider=provider)
    # Metrics on their own port, never on the API's (docs/security.md).
    with metrics_server(app.state.registry, settings.metrics_host, settings.metrics_port):
        # uvicorn with header and body deadlines and bounded connections (limits.connections).
        config = server_config(app, settings.host, settings.port, settings.connections)
        uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
