"""What the managed-key handlers share: counting failures by their code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from x0_common.errors import InternalError, X0Error
from x0_crypto.metrics import SERVICE, CryptoMetrics


@contextmanager
def counted(metrics: CryptoMetrics, operation: str) -> Iterator[None]:
    """Count a failed managed-key operation by its error code (``internal`` for a bug)."""
    try:
        yield
    except X0Error as error:
        metrics.key_failures.labels(SERVICE, operation, error.code).inc()
        raise
    except Exception:
        metrics.key_failures.labels(SERVICE, operation, InternalError.code).inc()
        raise
