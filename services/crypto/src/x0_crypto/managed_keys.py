"""Managed keys at run time: the keystore in ``deps.resources`` and automatic rotation.

:func:`managed_key_hooks` gives the worker a start hook (after the pool opened: builds
the keystore, starts the sweep) and a stop hook (before the pool closes: stops it).

Every replica runs the sweep. That is safe by construction: a sweep reads the keys
that are due without locks, then rotates each through :meth:`KeyStore.rotate_if_due`,
which takes the key's row lock with ``SKIP LOCKED`` and re-checks the age under it.
Replicas sweeping together therefore rotate a due key exactly once; the others skip
it or find it no longer due. The interval is jittered so replicas drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from x0_crypto.adapters.keybackup import KeyBackups
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.deps import CryptoDeps
from x0_crypto.metrics import SERVICE, CryptoMetrics

logger = logging.getLogger(__name__)

KEYSTORE = "keystore"
KEY_BACKUPS = "key_backups"
# Keys rotated per sweep at most: one slow sweep must not hold a connection for long.
SWEEP_BATCH = 500

Hook = Callable[[], Awaitable[None]]


async def rotate_due_keys(store: KeyStore, metrics: CryptoMetrics) -> list[str]:
    """One sweep: rotate every key whose latest version is older than its period.

    Returns the names this call rotated, and refreshes the ``managed_keys`` gauge.
    """
    rotated = []
    for name in await store.due_for_rotation(SWEEP_BATCH):
        if await store.rotate_if_due(name) is not None:
            metrics.rotations.labels(SERVICE, "auto").inc()
            rotated.append(name)
    # The table's count, not a per-replica tally: right whichever replica changed it.
    metrics.managed_keys.labels(SERVICE).set(await store.count())
    return rotated


class AutoRotator:
    """Runs :func:`rotate_due_keys` every ``interval`` seconds (jittered by ±10 %)."""

    def __init__(self, store: KeyStore, metrics: CryptoMetrics, interval: float) -> None:
        self._store = store
        self._metrics = metrics
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sweeping in the background."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="x0-crypto-auto-rotate")

    async def stop(self) -> None:
        """Stop sweeping; a rotation in flight is cancelled, and its transaction rolls back."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                rotated = await rotate_due_keys(self._store, self._metrics)
                if rotated:
                    logger.info("auto-rotation sweep", extra={"rotated": len(rotated)})
            except Exception as error:  # noqa: BLE001 - the sweep must outlive any one failure
                logger.warning("auto-rotation sweep failed", extra={"error": type(error).__name__})
            await asyncio.sleep(self._interval * random.uniform(0.9, 1.1))  # noqa: S311 - jitter, not a secret


def managed_key_hooks(deps: CryptoDeps) -> tuple[Hook, Hook]:
    """``(start, stop)``: run ``start`` after the pool opens and ``stop`` before it closes."""
    rotator: list[AutoRotator] = []

    async def start() -> None:
        kek = deps.settings.key_encryption_key()
        store = KeyStore(deps.pool, kek, deps.algorithms, deps.metrics)
        deps.resources[KEYSTORE] = store
        deps.resources[KEY_BACKUPS] = KeyBackups(store, kek, deps.algorithms)
        deps.metrics.managed_keys.labels(SERVICE).set(await store.count())
        rotator.append(AutoRotator(store, deps.metrics, deps.settings.auto_rotate_check_seconds))
        rotator[-1].start()

    async def stop() -> None:
        while rotator:
            await rotator.pop().stop()

    return start, stop
