"""The whole system exporting its spans to a real Jaeger v2, for the tests in this folder.

The same processes as tests/system (its fixtures, imported here, so this package gets
instances of its own: a run id, a database, consumer groups), except that every
service's ``OTEL_EXPORTER_OTLP_ENDPOINT`` is a Jaeger this package starts, and the
tests read the traces back through Jaeger's query API, as an operator's UI does.

A missing Jaeger fails the tests: ``deploy/local-stack/jaeger.sh`` builds it when it is
not cached (``make test`` runs it first, so the build's minutes are not a test's).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from mirakuru.exceptions import ProcessExitedWithError, TimeoutExpired

from tests.jaeger.jaeger import JAEGER_CONFIG, PORT_VARIABLES, Jaeger, jaeger_binary
from tests.system.conftest import (  # noqa: F401 - fixtures, used by name
    client,
    crypto_service,
    gateway_service,
    rag_service,
    run_id,
    service_logs,
    services,
    start_service,
    system_environment,
    telemetry_service,
    workers,
)
from x0_common.testing.processes import free_port, http_executor


@pytest.fixture(scope="package")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    """Jaeger v2 with the committed configuration (in-memory storage), on free ports."""
    binary = jaeger_binary()
    ports = {variable: free_port() for variable in PORT_VARIABLES}
    log: Path = tmp_path_factory.mktemp("jaeger") / "jaeger.log"
    with log.open("a") as output:
        executor = http_executor(
            [str(binary), f"--config={JAEGER_CONFIG}"],
            ready_url=f"http://127.0.0.1:{ports['JAEGER_HEALTH_PORT']}/status",
            environment={variable: str(port) for variable, port in ports.items()},
            output=output,
            timeout=60,
        )
        try:
            executor.start()
        except (ProcessExitedWithError, TimeoutExpired) as error:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"jaeger did not start: {error}\n{tail}")
        try:
            yield Jaeger(
                otlp_endpoint=f"http://127.0.0.1:{ports['JAEGER_OTLP_HTTP_PORT']}",
                query_url=f"http://127.0.0.1:{ports['JAEGER_QUERY_HTTP_PORT']}",
                log=log,
            )
        finally:
            executor.stop()


@pytest.fixture(scope="package")
def otlp_endpoint(jaeger: Jaeger) -> str:
    """The services export their spans to Jaeger (tests/system's services fixtures)."""
    return jaeger.otlp_endpoint
