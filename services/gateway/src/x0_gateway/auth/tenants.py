"""Whether a tenant named by a credential exists and is enabled, with a short cache.

An API key's tenant is checked with the key itself (``ApiKeyStore.find`` returns no
key of a disabled tenant). A JWT's tenant is the identity provider's claim: it is
looked up here, in ``gateway.tenants``, before the token is accepted. The answer is
cached for at most ``cache_seconds`` (the API keys' bound, ≤ 5 s), so disabling a
tenant reaches every replica within that time; unknown tenants are cached too. Only
tokens whose signature and claims already hold get this far, so nobody without the
provider's signing key can fill the cache.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from x0_gateway.auth.caller import InvalidCredentials
from x0_gateway.auth.store import Tenant


class TenantLookup(Protocol):
    """What the directory needs of the store."""

    async def find_tenant(self, tenant_id: str) -> Tenant | None:
        """The tenant of that id, or None."""
        ...


class TenantDirectory:
    """Refuses credentials whose tenant is unknown or disabled (:class:`InvalidCredentials`)."""

    def __init__(
        self, store: TenantLookup, *, cache_seconds: float, max_entries: int = 10_000
    ) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._max_entries = max_entries
        self._cache: OrderedDict[str, tuple[float, bool]] = OrderedDict()

    async def require_enabled(self, tenant_id: str) -> None:
        """Pass when the tenant exists and is enabled; a store that cannot answer
        raises its ``Unavailable`` (503): never a guess."""
        now = time.monotonic()
        cached = self._cache.get(tenant_id)
        if cached is None or cached[0] <= now:
            tenant = await self._store.find_tenant(tenant_id)
            enabled = tenant is not None and tenant.disabled_at is None
            cached = (now + self._cache_seconds, enabled)
            self._cache[tenant_id] = cached
            self._cache.move_to_end(tenant_id)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        if not cached[1]:
            raise InvalidCredentials("the credential's tenant is unknown or disabled")
