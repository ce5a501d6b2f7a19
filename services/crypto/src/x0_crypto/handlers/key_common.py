"""What the managed-key handlers share: resource look-up and failure counting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from x0_common.errors import InternalError, X0Error
from x0_crypto.adapters.keybackup import KeyBackups
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.deps import CryptoDeps
from x0_crypto.managed_keys import KEY_BACKUPS, KEYSTORE
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


def _resource(deps: CryptoDeps, name: str) -> object:
    found = deps.resources.get(name)
    if found is None:
        # A wiring mistake, not a passing failure: retrying would not help.
        raise InternalError("managed keys are not configured in this worker")
    return found


def keystore(deps: CryptoDeps) -> KeyStore:
    """The keystore; looked up per call because it opens after registration."""
    store = _resource(deps, KEYSTORE)
    assert isinstance(store, KeyStore)
    return store


def key_backups(deps: CryptoDeps) -> KeyBackups:
    """Export, backup and restore; opened with the keystore."""
    backups = _resource(deps, KEY_BACKUPS)
    assert isinstance(backups, KeyBackups)
    return backups
