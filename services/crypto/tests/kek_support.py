"""Blobs as the code before KEK ids sealed them (formats ``0x01``/``0x02``), so the
tests can prove such rows still open and get re-wrapped."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from x0_crypto.domain import envelope


def legacy_seal(
    kek: bytes,
    *,
    tenant: str = "default",
    name: str,
    version: int,
    key_type: str,
    secret_key: bytes,
) -> bytes:
    """The envelope layout of formats 0x01/0x02: no KEK id, DEK wrapped under ``aad``."""
    aad = envelope._aad(tenant, name, version, key_type)
    dek = AESGCM.generate_key(bit_length=256)
    wrap_nonce, data_nonce = os.urandom(12), os.urandom(12)
    return (
        bytes([envelope.FORMAT_V1 if tenant == "default" else envelope.FORMAT_V2])
        + wrap_nonce
        + AESGCM(kek).encrypt(wrap_nonce, dek, aad)
        + data_nonce
        + AESGCM(dek).encrypt(data_nonce, secret_key, aad)
    )
