"""JSON-lines logging with the current trace and span ids on every record.

An exception is logged by its type and traceback, never by its message: messages
carry the values that caused them (asyncpg's ``invalid input for query argument $1:
2147483648``, pydantic's ``input_value=...``), and a request's values, key material
included, must not reach a log line.
"""

from __future__ import annotations

import logging
import sys
import traceback
from types import TracebackType

from pythonjsonlogger.json import JsonFormatter

from x0_common.tracing import current_trace_ids


class _TraceContextFilter(logging.Filter):
    """Adds ``trace_id``/``span_id`` so a log line can be found from its trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        ids = current_trace_ids()
        record.trace_id, record.span_id = ids if ids else ("", "")
        return True


class _JsonFormatter(JsonFormatter):
    """JSON lines whose exceptions say where and what, not with which values."""

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        return describe_exception(ei[1]) if ei[1] is not None else ""


def describe_exception(error: BaseException) -> str:
    """The traceback of ``error`` and its causes, each named by type without its message."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    lines: list[str] = []
    for exception in reversed(chain):
        if lines:
            lines.append("\nwhich led to:\n")
        lines.append("Traceback (most recent call last):\n")
        # Places only, no source lines: a line may spell out what it raises.
        lines.extend(
            f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}\n'
            for frame in traceback.extract_tb(exception.__traceback__)
        )
        kind = type(exception)
        lines.append(f"{kind.__module__}.{kind.__qualname__} (message withheld)\n")
    return "".join(lines).rstrip("\n")


def setup_logging(service: str, level: str = "INFO") -> None:
    """Send every log record to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceContextFilter())
    handler.setFormatter(
        _JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
            rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
            static_fields={"service": service},
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
