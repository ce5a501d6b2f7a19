"""Test helpers that users of x0_common want too: span capture, fresh metrics, secrets.

Nothing here fakes Kafka, crypto or embeddings; the echo worker in
:mod:`x0_common.testing.echo` is a real responder on a real broker.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from x0_common.metrics import new_registry

__all__ = ["SpanCapture", "give_secret", "new_registry", "wait_until"]


def give_secret(
    setenv: Callable[[str, str], None],
    variable: str,
    value: str,
    *,
    in_file: Path | None = None,
) -> None:
    """Give a secret setting the two ways settings read secrets: inline in ``variable``,
    or, with ``in_file``, written there and named by ``<variable>_FILE``.

    ``setenv`` is e.g. pytest's ``monkeypatch.setenv``.
    """
    if in_file is None:
        setenv(variable, value)
        return
    in_file.write_text(value + "\n")
    setenv(f"{variable}_FILE", str(in_file))


async def wait_until(
    condition: Callable[[], bool], *, timeout: float = 10.0, interval: float = 0.02
) -> None:
    """Poll ``condition`` until it holds; ``TimeoutError`` after ``timeout`` seconds.

    For conditions nothing signals, such as a metric another task increments.
    """
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - the condition has no event to await
            await asyncio.sleep(interval)


class SpanCapture:
    """Collects finished spans in memory; install with :func:`x0_common.tracing.setup_tracing`."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.processor = SimpleSpanProcessor(self.exporter)

    def install(self, provider: TracerProvider) -> None:
        """Add the capture to a tracer provider."""
        provider.add_span_processor(self.processor)

    @property
    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span finished so far."""
        return tuple(self.exporter.get_finished_spans())

    def clear(self) -> None:
        """Forget the spans captured so far."""
        self.exporter.clear()
