"""What the mesh protocols need from storage, as small Protocols the adapters implement.

* :class:`ManagedKeys`: nodes' managed keys (the keystore of the managed-keys API).
* :class:`PinStore`: the public key pinned for each node (durable: PostgreSQL).
* :class:`NonceCache`: beacon nonces seen within the window (fast: Redis).

Errors an implementation raises are those of :mod:`x0_common.errors`:
``NotFound`` for an unknown key name or version, ``Unavailable`` for a storage
failure that may pass (the responder retries it). Anything else is a bug.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from x0_crypto.errors import InvalidInput


class PublicKeyInfo(NamedTuple):
    """One version of a managed key, public half only.

    A plain ``(type, version, public_key)`` tuple is as good as this class.
    """

    type: str
    version: int
    public_key: bytes


class ManagedKeys(Protocol):
    """Read access to managed keys; secret halves stay inside the service."""

    async def public_key(self, name: str, version: int | None = None) -> PublicKeyInfo:
        """Key type (algorithm name, e.g. ``"X-Wing"``), version and public key of
        ``name`` at ``version`` (its latest version when ``None``); ``NotFound`` when
        there is no such key or version."""
        ...

    async def private_key(self, name: str, version: int) -> bytes:
        """The secret key of ``name`` at ``version``, decrypted, in the registry's
        format for the key's type; ``NotFound`` when there is no such key or version."""
        ...


class PinStore(Protocol):
    """The public key each node is known by (trust on first use).

    All operations are atomic on their own; concurrent callers cannot both win.
    """

    async def pin_first(self, node_id: str, public_key: bytes) -> tuple[bytes, bool]:
        """Pin ``public_key`` unless ``node_id`` has a pin already.

        Returns the key pinned after the call and whether this call pinned it.
        """
        ...

    async def current(self, node_id: str) -> bytes | None:
        """The key pinned for ``node_id``, if any."""
        ...

    async def replace(self, node_id: str, old: bytes, new: bytes) -> bool:
        """Pin ``new`` only if ``old`` is still the pin; whether it replaced it."""
        ...


class NonceCache(Protocol):
    """Beacon nonces accepted recently, per node, each owned by the request that saw it.

    The owner lets a redelivered request (same ``request_id``) be answered as it was
    the first time, instead of being taken for a replay of itself.
    """

    async def seen(self, node_id: str, nonce: bytes, request_id: str) -> bool:
        """Whether another request has recorded this nonce for this node."""
        ...

    async def record(self, node_id: str, nonce: bytes, request_id: str, ttl_ms: int) -> bool:
        """Record the nonce for ``ttl_ms`` unless recorded already; True when this
        request owns it now (recorded now, or earlier by the same request)."""
        ...


def require_key_type(info: PublicKeyInfo, expected: str, *, field: str) -> None:
    """:class:`InvalidInput` (400) unless the managed key is of type ``expected``."""
    if info.type != expected:
        raise InvalidInput(expected, field, reason=f"the key is {info.type}, not {expected}")
