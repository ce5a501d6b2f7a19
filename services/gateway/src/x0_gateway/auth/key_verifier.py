"""API-key verification with a short in-process cache, and last-use bookkeeping.

A key is hashed (HMAC-SHA-256 with the pepper) and looked up by that digest, first in
a cache of at most ``cache_seconds`` (≤ 5 s), then in PostgreSQL; the stored digest
is compared with :func:`hmac.compare_digest`. Unknown digests are cached too, so a
caller repeating a bad key does not cost a query each time. Every replica therefore
sees a revocation within ``cache_seconds``, with no message between replicas; the
replica that revokes drops its entry at once (:meth:`ApiKeyVerifier.forget`).
Expiry is checked on every use, not only at lookup.

``last_used_at`` is written off the request path: a use is noted in memory (at most
once a minute per key and replica) and :meth:`ApiKeyVerifier.run_touches` writes the
noted keys in one statement every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from x0_common.principal import Principal
from x0_gateway.auth import apikeys
from x0_gateway.auth.caller import Caller, InvalidCredentials
from x0_gateway.auth.store import ApiKey, ApiKeyStore

logger = logging.getLogger(__name__)

# last_used_at is written at most this often per key (and replica).
TOUCH_EVERY_SECONDS: Final = 60.0
MAX_CACHE_SECONDS: Final = 5.0


@dataclass(frozen=True, slots=True)
class _Entry:
    until: float  # monotonic
    digest: bytes
    caller: Caller | None  # None: no such key
    key_id: uuid.UUID | None = None
    expires_at: float | None = None  # unix time
    usable: bool = False


def _entry(found: tuple[ApiKey, bytes] | None, digest: bytes, until: float) -> _Entry:
    if found is None:
        return _Entry(until, digest, None)
    key, stored = found
    principal = Principal.model_validate(
        {"tenant": key.tenant, "subject": f"key:{key.id}", "scopes": key.scopes}
    )
    return _Entry(
        until,
        stored,
        Caller(principal, str(key.id)),
        key.id,
        None if key.expires_at is None else key.expires_at.timestamp(),
        key.revoked_at is None,
    )


class ApiKeyVerifier:
    """Turns an API key into its :class:`Caller`, or raises :class:`InvalidCredentials`."""

    def __init__(
        self,
        store: ApiKeyStore,
        pepper: bytes,
        *,
        cache_seconds: float,
        refuse_development_keys: bool,
        max_entries: int = 10_000,
    ) -> None:
        if not 0 <= cache_seconds <= MAX_CACHE_SECONDS:
            msg = f"cache_seconds must be within 0..{MAX_CACHE_SECONDS}: revocations must show"
            raise ValueError(msg)
        self._store = store
        self._pepper = pepper
        self._cache_seconds = cache_seconds
        self._refuse_development = refuse_development_keys
        self._max_entries = max_entries
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._noted: dict[uuid.UUID, float] = {}
        self._to_touch: set[uuid.UUID] = set()

    async def verify(self, key: str) -> Caller:
        """The caller holding ``key``; one query at most per ``cache_seconds``."""
        if not apikeys.is_well_formed(key):
            raise InvalidCredentials
        if self._refuse_development and apikeys.is_development_key(key):
            raise InvalidCredentials("development keys are refused in production")
        digest = apikeys.digest(self._pepper, key)
        now = time.monotonic()
        entry = self._cache.get(digest)
        if entry is None or entry.until <= now:
            entry = _entry(await self._store.find(digest), digest, now + self._cache_seconds)
            self._remember(entry)
        # Looked up by digest; compared again in constant time, whatever the lookup did.
        if not hmac.compare_digest(entry.digest, digest) or entry.caller is None:
            raise InvalidCredentials
        if not entry.usable or (entry.expires_at is not None and time.time() >= entry.expires_at):
            raise InvalidCredentials
        self._note_use(entry.key_id, now)
        return entry.caller

    def forget(self, key_id: uuid.UUID) -> None:
        """Drop a key's cached entry (this replica revoked it: no wait here)."""
        for digest in [d for d, e in self._cache.items() if e.key_id == key_id]:
            del self._cache[digest]

    def _remember(self, entry: _Entry) -> None:
        self._cache[entry.digest] = entry
        self._cache.move_to_end(entry.digest)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    def _note_use(self, key_id: uuid.UUID | None, now: float) -> None:
        if key_id is None or now - self._noted.get(key_id, -TOUCH_EVERY_SECONDS) < (
            TOUCH_EVERY_SECONDS
        ):
            return
        self._noted[key_id] = now
        self._to_touch.add(key_id)

    async def write_touches(self) -> int:
        """Write the noted uses as ``last_used_at``; returns how many keys were written."""
        if not self._to_touch:
            return 0
        key_ids, self._to_touch = self._to_touch, set()
        horizon = time.monotonic() - TOUCH_EVERY_SECONDS
        self._noted = {k: t for k, t in self._noted.items() if t > horizon}
        await self._store.touch(key_ids, datetime.now(UTC))
        return len(key_ids)

    async def run_touches(self, interval: float = 5.0) -> None:
        """Write noted uses every ``interval`` seconds until cancelled, then once more."""
        try:
            while True:
                await asyncio.sleep(interval)
                await self._write_logged()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._write_logged())

    async def _write_logged(self) -> None:
        try:
            await self.write_touches()
        except Exception:  # noqa: BLE001 - bookkeeping only: a lost touch is no failure
            logger.warning("could not write API keys' last use")
