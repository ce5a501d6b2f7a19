"""Automatic rotation: a background job every replica runs (``x0_common.worker.Periodic``).

Every replica sweeps every ``X0_CRYPTO_AUTO_ROTATE_CHECK_SECONDS`` (±10 %, so replicas
drift apart). That is safe by construction: a sweep reads the keys that are due
without locks, then rotates each through :meth:`KeyStore.rotate_if_due`, which takes
the key's row lock with ``SKIP LOCKED`` and re-checks the age under it. Replicas
sweeping together therefore rotate a due key exactly once; the others skip it or find
it no longer due. A sweep's failure is logged and the next sweep tries again.
"""

from __future__ import annotations

import logging

from x0_common.worker import Periodic
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.deps import CryptoDeps
from x0_crypto.metrics import SERVICE, CryptoMetrics

logger = logging.getLogger(__name__)

# Keys rotated per sweep at most: one slow sweep must not hold a connection for long.
SWEEP_BATCH = 500
JITTER = 0.1


async def rotate_due_keys(store: KeyStore, metrics: CryptoMetrics) -> list[str]:
    """One sweep: rotate every key (of every tenant) whose latest version is older than
    its period.

    Returns the names this call rotated, and refreshes the ``managed_keys`` gauge.
    """
    rotated = []
    for tenant, name in await store.due_for_rotation(SWEEP_BATCH):
        if await store.of(tenant).rotate_if_due(name) is not None:
            metrics.rotations.labels(SERVICE, "auto").inc()
            rotated.append(name)
    # The table's count, not a per-replica tally: right whichever replica changed it.
    metrics.managed_keys.labels(SERVICE).set(await store.count_all())
    return rotated


def auto_rotation(deps: CryptoDeps) -> Periodic:
    """The sweep as the worker's background job (start it once the keystore is open)."""

    async def sweep() -> None:
        rotated = await rotate_due_keys(deps.keystore, deps.metrics)
        if rotated:
            logger.info("auto-rotation sweep", extra={"rotated": len(rotated)})

    return Periodic(
        "crypto-auto-rotate", sweep, deps.settings.auto_rotate_check_seconds, jitter=JITTER
    )
