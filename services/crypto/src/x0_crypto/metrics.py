"""The crypto service's own metrics, and one way to time an operation with its span."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from prometheus_client import CollectorRegistry

from x0_common.errors import X0Error
from x0_common.metrics import MetricFactory

SERVICE = "crypto"
_tracer = trace.get_tracer("x0_crypto")


class CryptoMetrics:
    """Operations by algorithm and outcome; managed keys, rotations and failures."""

    def __init__(self, registry: CollectorRegistry) -> None:
        declare = MetricFactory(registry)
        self.ops = declare.counter(
            "x0_crypto_ops_total",
            "Cryptographic operations, by algorithm and outcome.",
            "algorithm",
            "operation",
            "outcome",
        )
        self.op_duration = declare.histogram(
            "x0_crypto_op_duration_seconds",
            "Time spent in one cryptographic operation.",
            "algorithm",
            "operation",
        )
        self.managed_keys = declare.gauge("x0_crypto_managed_keys", "Managed keys stored.")
        self.rotations = declare.counter(
            "x0_crypto_key_rotations_total",
            "Managed key rotations, manual or automatic.",
            "trigger",
        )
        self.key_failures = declare.counter(
            "x0_crypto_key_failures_total",
            "Failed managed-key operations, by operation and code.",
            "operation",
            "code",
        )

        # KEK rotation (python -m x0_crypto rewrap-kek): progress, and what is left.
        self.kek_rewrapped = declare.counter(
            "x0_crypto_kek_rewrapped_total",
            "Stored key versions re-wrapped under the current KEK, by the KEK id they left.",
            "from_kek_id",
        )
        self.kek_rewrap_failures = declare.counter(
            "x0_crypto_kek_rewrap_failures_total",
            "Stored key versions the rewrap could not open with any configured KEK.",
        )
        self.kek_remaining = declare.gauge(
            "x0_crypto_kek_versions_remaining",
            "Stored key versions not under the current KEK, by the id of the KEK wrapping"
            " them ('none': sealed before KEK ids).",
            "kek_id",
        )

        # Rejections by reason are what an operator watches: replays and key mismatches
        # are attack signals; stale/future point at clock drift.
        self.beacon_verifications = declare.counter(
            "x0_crypto_beacon_verifications_total",
            "Beacon verifications, by result (ok or the rejection reason).",
            "result",
        )

    @contextmanager
    def operation(self, algorithm: str, operation: str) -> Iterator[None]:
        """Time, count and trace one operation. Span attributes name, never hold, secrets."""
        started = time.perf_counter()
        outcome = "ok"
        with _tracer.start_as_current_span(
            f"crypto.{operation}",
            attributes={"x0.crypto.algorithm": algorithm, "x0.crypto.operation": operation},
        ):
            try:
                yield
            except X0Error as error:
                outcome = error.code
                raise
            except Exception:
                outcome = "internal"
                raise
            finally:
                self.op_duration.labels(SERVICE, algorithm, operation).observe(
                    time.perf_counter() - started
                )
                self.ops.labels(SERVICE, algorithm, operation, outcome).inc()
