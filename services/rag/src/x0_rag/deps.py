"""What handlers need, opened in the worker's start-up and handed to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from x0_rag.metrics import RagMetrics
from x0_rag.settings import RagSettings


@dataclass
class RagDeps:
    """Resources shared by every handler, filled in at start-up.

    ``resources`` holds: ``pool`` (asyncpg), ``redis``, ``batcher``
    (:class:`~x0_rag.adapters.embedder.DynamicBatcher`), ``indexes`` (the replica's
    index manager) and ``producer`` (the broker, to publish index events).
    """

    settings: RagSettings
    metrics: RagMetrics
    resources: dict[str, Any] = field(default_factory=dict)
