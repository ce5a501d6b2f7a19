"""Prometheus metrics on a port of their own, apart from the API.

Callers of the API never see the metrics (route names, request counts, Kafka
timings): the API's port serves only the API and ``/health/*``. The metrics port is
for Prometheus, reachable only inside the cluster (docs/security.md). It is served
by prometheus-client's own HTTP server, in a thread, from the gateway's registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, start_http_server


@contextmanager
def metrics_server(registry: CollectorRegistry, host: str, port: int) -> Iterator[int]:
    """Serve ``registry`` at ``http://host:port/metrics`` while open; yields the port."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
