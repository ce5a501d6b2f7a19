"""Verifying a signed beacon: signature, freshness, key pinning, replay.

Checks, in order; the first that fails gives the reason:

1. ``bad_signature``: the signature does not verify under the presented public key.
   Nothing else is looked at, so a forgery costs one signature check and touches no
   storage.
2. ``stale`` / ``future``: the timestamp is outside the window.
3. ``replayed`` (look-up only): another request already had this nonce accepted.
   Looked up *before* pinning so that a replayed beacon cannot change a pin.
4. Pinning (trust on first use): the first key seen for a node is pinned
   (``pinned=True``); the pinned key passes; another key needs ``key_change_proof``,
   the pinned key's signature over the key-change message, or the beacon is
   ``key_mismatch`` (no proof) / ``bad_key_change`` (a proof that does not verify).
   A valid proof replaces the pin (``pinned=True``) only if the pin is still the key
   the proof was checked against, so of two concurrent changes only one applies; the
   other is ``bad_key_change`` (its proof is by a key no longer pinned).
5. ``replayed`` (record): the nonce is recorded atomically, and only now. So a beacon
   rejected for any other reason does not burn its nonce: a node whose beacon was
   refused (say, a key change without its proof) can send the same beacon again, and
   an attacker gains nothing from that because the same checks run again. Of two
   copies racing past step 3, exactly one records the nonce; the other is
   ``replayed``. A pin the loser wrote is one the winner would have written.

Every storage step is idempotent, so a retry after a storage failure, or the redelivery
of the same request (same ``request_id``), gets the answer the first attempt would have.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from typing import Literal

from x0_crypto.domain.beacons import (
    BeaconFields,
    beacon_message,
    freshness,
    is_valid,
    key_change_message,
    nonce_ttl_ms,
)
from x0_crypto.domain.checked import CheckedSignature, require_length
from x0_crypto.domain.ports import NonceCache, PinStore

Reason = Literal[
    "ok", "bad_signature", "replayed", "stale", "future", "key_mismatch", "bad_key_change"
]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome; ``pinned`` says this call pinned the presented key (first seen or
    an accepted key change)."""

    valid: bool
    reason: Reason
    pinned: bool = False


_OK = Verdict(valid=True, reason="ok")


@dataclass(frozen=True, eq=False)
class BeaconVerifier:
    """Verifies beacons against the pins and the nonce cache (module docstring)."""

    scheme: CheckedSignature
    pins: PinStore
    nonces: NonceCache
    _: KW_ONLY
    window_ms: int
    clock_ms: Callable[[], int]

    async def verify(
        self,
        beacon: BeaconFields,
        signature: bytes,
        public_key: bytes,
        key_change_proof: bytes | None,
        *,
        request_id: str,
    ) -> Verdict:
        """Verify one beacon; ``request_id`` identifies the request across redeliveries.

        Raises :class:`~x0_crypto.errors.InvalidInput` for a malformed beacon
        (nonce length, timestamp range) or a public key of the wrong length.
        """
        message = beacon_message(beacon)
        require_length(
            self.scheme.algorithm, "public_key", public_key, self.scheme.sizes.public_key
        )
        if not is_valid(self.scheme, public_key, message, signature):
            return Verdict(valid=False, reason="bad_signature")
        now_ms = self.clock_ms()
        fresh = freshness(beacon.timestamp_ms, now_ms, self.window_ms)
        if fresh != "ok":
            return Verdict(valid=False, reason=fresh)
        if await self.nonces.seen(beacon.node_id, beacon.nonce, request_id):
            return Verdict(valid=False, reason="replayed")
        pin = await self._pin(beacon.node_id, public_key, key_change_proof)
        if not pin.valid:
            return pin
        ttl_ms = nonce_ttl_ms(beacon.timestamp_ms, now_ms, self.window_ms)
        if not await self.nonces.record(beacon.node_id, beacon.nonce, request_id, ttl_ms):
            return Verdict(valid=False, reason="replayed", pinned=pin.pinned)
        return pin

    async def _pin(self, node_id: str, public_key: bytes, proof: bytes | None) -> Verdict:
        pinned_key, created = await self.pins.pin_first(node_id, public_key)
        if created:
            return Verdict(valid=True, reason="ok", pinned=True)
        if pinned_key == public_key:
            return _OK
        return await self._change_pin(node_id, pinned_key, public_key, proof)

    async def _change_pin(
        self, node_id: str, pinned_key: bytes, public_key: bytes, proof: bytes | None
    ) -> Verdict:
        if proof is None:
            return Verdict(valid=False, reason="key_mismatch")
        vouched = key_change_message(node_id, public_key)
        if not is_valid(self.scheme, pinned_key, vouched, proof):
            return Verdict(valid=False, reason="bad_key_change")
        if await self.pins.replace(node_id, old=pinned_key, new=public_key):
            return Verdict(valid=True, reason="ok", pinned=True)
        # The pin moved between our read and our update. If it moved to this very key
        # (a concurrent copy of the same change), the beacon is fine; otherwise the
        # proof vouches from a key that is no longer pinned: the same answer as if the
        # other change had landed before our read, so timing does not change the reason.
        if await self.pins.current(node_id) == public_key:
            return _OK
        return Verdict(valid=False, reason="bad_key_change")
