"""Node key pins in PostgreSQL (:class:`~x0_crypto.domain.ports.PinStore`).

Table ``crypto.node_pins`` (``migrations/002_mesh.sql``, keyed by tenant and node since
``003_tenants.sql``; a store serves one tenant). Each operation is a single
statement, hence its own transaction, and race-safe without explicit locks:

* first pin: ``INSERT ... ON CONFLICT DO NOTHING``: of concurrent first sightings
  with different keys, exactly one row is inserted; the others read it back.
* key change: ``UPDATE ... WHERE node_id = $1 AND public_key = $old``: the row lock
  the UPDATE takes serialises concurrent changes, and PostgreSQL re-checks the
  condition on the row as committed by the winner, so a second change vouched by the
  same old key finds it gone and updates nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import asyncpg

from x0_common.errors import Unavailable
from x0_common.postgres import TRANSIENT_ERRORS
from x0_common.principal import DEFAULT_TENANT

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

_PIN_FIRST = """
INSERT INTO crypto.node_pins (tenant, node_id, public_key) VALUES ($1, $2, $3)
ON CONFLICT (tenant, node_id) DO NOTHING
RETURNING public_key
"""
_CURRENT = "SELECT public_key FROM crypto.node_pins WHERE tenant = $1 AND node_id = $2"
_REPLACE = """
UPDATE crypto.node_pins SET public_key = $4, updated_at = now()
WHERE tenant = $1 AND node_id = $2 AND public_key = $3
"""


class PostgresPinStore:
    """Implements :class:`~x0_crypto.domain.ports.PinStore` on an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool, *, tenant: str = DEFAULT_TENANT) -> None:
        self._pool = pool
        self._tenant = tenant

    async def pin_first(self, node_id: str, public_key: bytes) -> tuple[bytes, bool]:
        """Pin ``public_key`` if the node has no pin; the pin now, and whether we set it."""
        while True:
            inserted = await self._run(
                self._pool.fetchval, _PIN_FIRST, self._tenant, node_id, public_key
            )
            if inserted is not None:
                return bytes(inserted), True
            # Someone pinned first; read their key. The loop only turns again if an
            # operator deleted the row in between (the service never deletes pins).
            pinned = await self.current(node_id)
            if pinned is not None:
                return pinned, False

    async def current(self, node_id: str) -> bytes | None:
        """The key pinned for ``node_id``, if any."""
        pinned = await self._run(self._pool.fetchval, _CURRENT, self._tenant, node_id)
        return None if pinned is None else bytes(pinned)

    async def replace(self, node_id: str, old: bytes, new: bytes) -> bool:
        """Pin ``new`` if ``old`` is still pinned; whether this call replaced it."""
        status = await self._run(self._pool.execute, _REPLACE, self._tenant, node_id, old, new)
        return str(status) == "UPDATE 1"

    @staticmethod
    async def _run(call: Callable[..., Awaitable[Any]], *args: object) -> Any:
        try:
            return await call(*args)
        except TRANSIENT_ERRORS as error:
            raise Unavailable(
                "postgres: node pin store failed", details={"store": "postgres"}
            ) from error
