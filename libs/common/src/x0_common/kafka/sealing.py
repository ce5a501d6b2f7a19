"""Sealed request/reply values: nothing secret sits in Kafka in the clear.

Requests carry secret keys (stateless decapsulate, sign), plaintexts (encrypt) and
replies carry shared secrets and exported keys. Kafka keeps them on disk for the
topic's retention, so the gateway and the workers seal every request and reply value
with AES-256-GCM under a key the broker never sees (``X0_KAFKA__SEALING_KEY``).

- The value is ``nonce (12 bytes) || ciphertext || tag``; the ``x0-seal`` header names
  the key by its id (the first 8 bytes of SHA-256 of the key, hex), so keys rotate:
  new messages use the current key, older ones open with a previous key still listed.
- The headers that steer the message are bound as associated data: type, correlation
  id, reply topic, deadline and principal (and the outcome of a reply). A sealed value
  moved to another message, or a principal swapped, fails to open.
- Sealing also authenticates: a responder that requires sealed requests refuses any
  value not sealed under a current key, so writing to a request topic is not enough to
  be answered.

Upstream producers' topics (telemetry events, RAG ingest) are not sealed: producers
outside the services hold no sealing key, and what they carry is not key material.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from x0_common.events.envelope import Headers

SEAL_HEADER: Final = "x0-seal"
_NONCE_BYTES: Final = 12
# The headers a sealed value is bound to, in this order (absent ones count as empty).
BOUND_HEADERS: Final = (
    Headers.TYPE,
    Headers.CORRELATION_ID,
    Headers.REPLY_TO,
    Headers.DEADLINE,
    Headers.PRINCIPAL,
    Headers.OUTCOME,
)


class SealError(Exception):
    """A value that is not sealed, sealed under an unknown key, or tampered with."""


def key_id(key: bytes) -> str:
    """The public name of a sealing key: it identifies the key and reveals nothing."""
    return hashlib.sha256(key).digest()[:8].hex()


def associated_data(headers: Mapping[str, str]) -> bytes:
    """The bound headers, length-prefixed so no two header sets encode alike."""
    parts = [headers.get(name, "").encode() for name in BOUND_HEADERS]
    return b"".join(len(part).to_bytes(4, "big") + part for part in parts)


class Sealer:
    """Seals with the current key; opens with the current or a previous one."""

    def __init__(self, current: bytes, previous: Sequence[bytes] = ()) -> None:
        for key in (current, *previous):
            if len(key) != 32:
                msg = "a sealing key must be 32 bytes"
                raise ValueError(msg)
        self._current_id = key_id(current)
        self._current = AESGCM(current)
        self._keys = {key_id(key): AESGCM(key) for key in (*previous, current)}

    def seal(self, value: bytes, headers: dict[str, str]) -> bytes:
        """Encrypt ``value`` bound to ``headers``, and name the key in them."""
        nonce = os.urandom(_NONCE_BYTES)
        headers[SEAL_HEADER] = self._current_id
        return nonce + self._current.encrypt(nonce, value, associated_data(headers))

    def open(self, value: bytes, headers: Mapping[str, str]) -> bytes:
        """The plaintext of a sealed ``value``; :class:`SealError` otherwise."""
        name = headers.get(SEAL_HEADER)
        if name is None:
            msg = "the value is not sealed"
            raise SealError(msg)
        key = self._keys.get(name)
        if key is None:
            msg = "the value is sealed under a key this service does not hold"
            raise SealError(msg)
        if len(value) < _NONCE_BYTES + 16:
            msg = "the sealed value is truncated"
            raise SealError(msg)
        try:
            return key.decrypt(value[:_NONCE_BYTES], value[_NONCE_BYTES:], associated_data(headers))
        except InvalidTag:
            msg = "the sealed value does not open: tampered, or bound to other headers"
            raise SealError(msg) from None
