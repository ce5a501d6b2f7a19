"""How x0 dead-letters a message: one header layout for every consumer.

A dead letter keeps the original bytes and headers and adds why and where from, so
an operator can read the reason and replay the message:

- ``x0-dlq-reason``: a short, stable code (``undecodable``, ``schema_mismatch``, ...);
- ``x0-dlq-detail``: what failed (field locations, never input values), cut to 500
  characters;
- ``x0-dlq-origin``: ``topic/partition/offset`` of the original message.

The request/reply :class:`~x0_common.kafka.Responder` and the telemetry ingest both
build their dead letters here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from x0_common.events.envelope import Headers

MAX_DETAIL_CHARS: Final = 500


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return f"{topic}.dlq"


def origin(topic: str, partition: int, offset: int) -> str:
    """The ``x0-dlq-origin`` value of a message."""
    return f"{topic}/{partition}/{offset}"


def dead_letter_headers(
    headers: Mapping[str, str], *, reason: str, detail: str, origin: str
) -> dict[str, str]:
    """The original ``headers`` plus the reason, detail and origin of the dead letter."""
    return {
        **headers,
        Headers.DLQ_REASON: reason,
        Headers.DLQ_DETAIL: detail[:MAX_DETAIL_CHARS],
        Headers.DLQ_ORIGIN: origin,
    }
