"""Signed beacons: what is signed, when a beacon is fresh, and how a node changes key.

Bytes (version 1; ``lp(x) = u32be(len(x)) || x``, ``u64be`` 8 bytes big-endian)::

    beacon message     = lp("x0tta6bl4/beacon/v1") || lp(utf8(node_id))
                         || u64be(timestamp_ms) || lp(nonce)           nonce 16..64 bytes
    key-change message = lp("x0tta6bl4/beacon-key-change/v1") || lp(utf8(node_id))
                         || lp(new_public_key)

Both are signed with ML-DSA-65: the beacon by the node's current key, the key-change
message by the key pinned for the node before the change. Distinct labels keep one
kind of signature from ever passing for the other.

Freshness: a beacon is accepted while ``|now - timestamp| <= window``; older is
``stale``, newer is ``future``. Its nonce must then be remembered until the beacon
leaves the window, which is up to two windows after ``now`` (a beacon stamped at
``now + window`` stays acceptable until ``now + 2 * window``), plus the clock skew
tolerated between worker replicas (:data:`CLOCK_SKEW_MARGIN_MS`).

Known limit of the key-change proof: it names no generation, so a proof that moved a
pin from K1 to K2 moves it again if the node later goes back to K1 and an attacker
replays the old proof. Nodes should not return to a retired key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from x0_crypto.domain.algorithms import ML_DSA_65
from x0_crypto.domain.checked import CheckedSignature
from x0_crypto.domain.framing import length_prefixed, u64
from x0_crypto.errors import InvalidInput

ALGORITHM = ML_DSA_65
BEACON_LABEL = b"x0tta6bl4/beacon/v1"
KEY_CHANGE_LABEL = b"x0tta6bl4/beacon-key-change/v1"
NONCE_BYTES = 32
MIN_NONCE_BYTES = 16
MAX_NONCE_BYTES = 64
# How far worker replicas' clocks may disagree; nonces are kept this much longer so
# that a replica whose clock runs behind cannot accept a replay the others forgot.
CLOCK_SKEW_MARGIN_MS = 5_000

Freshness = Literal["ok", "stale", "future"]


@dataclass(frozen=True, slots=True)
class BeaconFields:
    """Who (``node_id``), when (unix ms) and a fresh nonce."""

    node_id: str
    timestamp_ms: int
    nonce: bytes


def new_beacon(node_id: str, now_ms: int) -> BeaconFields:
    """A beacon for ``node_id`` stamped ``now_ms`` with a 32-byte random nonce."""
    return BeaconFields(
        node_id=node_id, timestamp_ms=now_ms, nonce=secrets.token_bytes(NONCE_BYTES)
    )


def beacon_message(beacon: BeaconFields) -> bytes:
    """The canonical bytes a beacon's signature covers (module docstring).

    :class:`InvalidInput` for a nonce outside 16..64 bytes or a timestamp outside u64.
    """
    if not MIN_NONCE_BYTES <= len(beacon.nonce) <= MAX_NONCE_BYTES:
        raise InvalidInput(
            ALGORITHM,
            "nonce",
            reason=f"must be {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} bytes, got {len(beacon.nonce)}",
        )
    timestamp = u64(beacon.timestamp_ms, algorithm=ALGORITHM, field="timestamp_ms")
    head = length_prefixed(BEACON_LABEL, beacon.node_id.encode())
    return head + timestamp + length_prefixed(beacon.nonce)


def key_change_message(node_id: str, new_public_key: bytes) -> bytes:
    """The bytes the previously pinned key signs to vouch for ``new_public_key``."""
    return length_prefixed(KEY_CHANGE_LABEL, node_id.encode(), new_public_key)


def freshness(timestamp_ms: int, now_ms: int, window_ms: int) -> Freshness:
    """``ok`` within ``window_ms`` of ``now_ms`` either way (bounds included)."""
    if timestamp_ms < now_ms - window_ms:
        return "stale"
    if timestamp_ms > now_ms + window_ms:
        return "future"
    return "ok"


def nonce_ttl_ms(timestamp_ms: int, now_ms: int, window_ms: int) -> int:
    """How long to remember the nonce of a beacon accepted at ``now_ms``."""
    return max(timestamp_ms + window_ms - now_ms, 0) + CLOCK_SKEW_MARGIN_MS


def is_valid(scheme: CheckedSignature, public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is valid; a signature of the wrong length is just invalid.

    A public key of the wrong length raises :class:`InvalidInput`: it cannot be a key of
    this scheme at all, which is the caller's mistake rather than a forgery.
    """
    if len(signature) != scheme.sizes.signature:
        return False
    return scheme.verify(public_key, message, signature)
