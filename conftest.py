"""Shared by every test in the workspace: the real-services fixtures and span capture."""

from __future__ import annotations

import pytest

from x0_common.testing import SpanCapture
from x0_common.tracing import setup_tracing

pytest_plugins = ["x0_common.testing.stack"]


@pytest.fixture(scope="session")
def span_capture() -> SpanCapture:
    """The process's tracer provider, recording into memory.

    OpenTelemetry allows one global provider per process, so every test that looks at
    spans shares this one; clear it at the start of a test.
    """
    capture = SpanCapture()
    setup_tracing("x0-test", extra_processors=(capture.processor,))
    return capture
