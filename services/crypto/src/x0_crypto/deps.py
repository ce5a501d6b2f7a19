"""What handlers need: built with the app, opened at start-up (typed fields)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from x0_common.resources import Opened, Stores
from x0_crypto.adapters.kekrewrap import KekRewrap
from x0_crypto.adapters.keybackup import KeyBackups
from x0_crypto.adapters.keystore import KeyStore
from x0_crypto.domain import Registry
from x0_crypto.metrics import SERVICE, CryptoMetrics
from x0_crypto.settings import CryptoSettings

logger = logging.getLogger(__name__)


@dataclass(eq=False)
class CryptoDeps:
    """Shared by every handler; ``stores`` and the keystore exist once started."""

    settings: CryptoSettings
    algorithms: Registry
    metrics: CryptoMetrics
    # The PostgreSQL pool (schema ``crypto``) and Redis: opened by the worker builder.
    stores: Stores
    # Managed keys on the pool, sealed under the KEK: opened by :meth:`open_keys`. Bind
    # them to the caller's tenant (``keystore.of(context.tenant)``) before any use.
    keystore = Opened[KeyStore]("managed keys")
    backups = Opened[KeyBackups]("managed key backups")

    async def open_keys(self) -> None:
        """Build the keystore and backups on the open pool; set the managed-keys gauge."""
        kek = self.settings.keyring()
        store = KeyStore(
            self.stores.pool,
            kek,
            self.algorithms,
            self.metrics,
            max_keys=self.settings.max_keys_per_tenant,
        )
        self.keystore = store
        self.backups = KeyBackups(store, kek, self.algorithms)
        self.metrics.managed_keys.labels(SERVICE).set(await store.count_all())
        # Versions still under a previous KEK (or none named): what a rewrap has left.
        remaining = await KekRewrap(self.stores.pool, kek, self.metrics).remaining()
        if remaining:
            logger.warning(
                "stored key versions are not under the current KEK; run"
                " `python -m x0_crypto rewrap-kek`",
                extra={"remaining_by_kek_id": remaining},
            )
