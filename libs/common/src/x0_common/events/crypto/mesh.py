"""The mesh-node session handshake and signed beacons.

Session: node A asks for a session with node B's managed X-Wing key; the service
encapsulates to B, A gets the ciphertext, a session id and its directional keys;
B (``accept``) decapsulates with its managed key and derives the same keys. Keys
come from HKDF-SHA256 over a transcript of both public keys, the ciphertext and
the session id.

Beacons: ML-DSA-65 signatures over ``{node_id, timestamp, nonce}``; a verifier
rejects replays (a nonce seen within the window), stale or future timestamps, and
a key other than the one pinned for the node unless the pinned key signed it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from x0_common.events.binary import Base64Bytes
from x0_common.events.names import KeyName, NodeId
from x0_common.events.storable import INT4_MAX


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SessionKeys(_Message):
    """Directional AES-256 keys: one per direction, never reused across directions."""

    initiator_to_responder: Base64Bytes
    responder_to_initiator: Base64Bytes


class SessionInitiateRequest(_Message):
    """Node A (``initiator_key``) opens a session to node B (``responder_key``)."""

    initiator_key: KeyName
    responder_key: KeyName


class SessionInitiateResult(_Message):
    """What A keeps (the keys) and what A sends B (session id, ciphertext, its key)."""

    session_id: str
    ciphertext: Base64Bytes
    initiator_public_key: Base64Bytes
    responder_public_key: Base64Bytes
    responder_key_version: int
    keys: SessionKeys


class SessionAcceptRequest(_Message):
    """Node B completes the session A opened."""

    responder_key: KeyName
    responder_key_version: int = Field(ge=1, le=INT4_MAX)
    session_id: str = Field(min_length=16, max_length=64)
    ciphertext: Base64Bytes
    initiator_public_key: Base64Bytes


class SessionAcceptResult(_Message):
    """B's copy of the directional keys: equal to A's."""

    session_id: str
    keys: SessionKeys


class Beacon(_Message):
    """What a node signs: who, when (unix ms) and a fresh nonce."""

    node_id: NodeId
    timestamp_ms: int = Field(ge=0)
    nonce: Base64Bytes


class BeaconSignRequest(_Message):
    """Sign a fresh beacon for ``node_id`` with the managed ML-DSA-65 key ``key_name``."""

    key_name: KeyName
    node_id: NodeId


class SignedBeacon(_Message):
    """A beacon, its signature and the signer's public key; after the managed key was
    rotated, ``key_change_proof`` is the previous version's signature over this key
    (pass it on to ``verify`` so that verifiers move their pin)."""

    beacon: Beacon
    signature: Base64Bytes
    public_key: Base64Bytes
    key_change_proof: Base64Bytes | None = None


class BeaconVerifyRequest(_Message):
    """Verify a signed beacon; ``key_change_proof`` is the pinned key's signature over
    the new ``public_key``, needed only when the node's key changes."""

    beacon: Beacon
    signature: Base64Bytes
    public_key: Base64Bytes
    key_change_proof: Base64Bytes | None = None


class BeaconVerifyResult(_Message):
    """``valid`` with ``reason="ok"``, or why not; ``pinned``: this call pinned the
    presented key (the node's first beacon, or an accepted key change)."""

    valid: bool
    reason: Literal[
        "ok", "bad_signature", "replayed", "stale", "future", "key_mismatch", "bad_key_change"
    ]
    pinned: bool = False
