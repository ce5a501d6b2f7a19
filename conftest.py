"""Shared by every test in the workspace: the real-services fixtures and span capture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from x0_common.testing import SpanCapture
from x0_common.tracing import setup_tracing
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key

if TYPE_CHECKING:
    # Not imported at run time: pytest must load the plugin module first, to rewrite it.
    from x0_common.testing.stack import StackEndpoints

pytest_plugins = ["x0_common.testing.stack"]

# The caller's own x0 credentials (the README has users export X0_API_KEY after
# `make up`): the client and the x0 command read them, and would send that key, valid
# only on the make-up stack, instead of the tests' own. Tests that need them set them.
CALLER_VARIABLES = ("X0_URL", "X0_API_KEY", "X0_API_KEY_FILE")


@pytest.fixture(scope="session", autouse=True)
def without_the_callers_credentials() -> Iterator[None]:
    """No X0_URL / X0_API_KEY from the shell that ran the tests."""
    with pytest.MonkeyPatch.context() as environment:
        for variable in CALLER_VARIABLES:
            environment.delenv(variable, raising=False)
        yield


@pytest.fixture(scope="session")
def span_capture() -> SpanCapture:
    """The process's tracer provider, recording into memory.

    OpenTelemetry allows one global provider per process, so every test that looks at
    spans shares this one; clear it at the start of a test.
    """
    capture = SpanCapture()
    setup_tracing("x0-test", extra_processors=(capture.processor,))
    return capture


@pytest.fixture(scope="session")
async def admin_api_key(stack: StackEndpoints) -> str:
    """An API key with every grantable scope in the ``default`` tenant, made in the
    stack's database as ``x0-gateway-admin create-key`` makes one. Gateways of the tests
    (in process or not) use the development pepper, so they accept it.

    Send it on every request: ``headers={"Authorization": f"Bearer {admin_api_key}"}``.
    """
    created = await provision_key(
        stack.postgres_dsn, GatewaySettings().pepper(), name="tests: admin (every scope)"
    )
    return created.key
