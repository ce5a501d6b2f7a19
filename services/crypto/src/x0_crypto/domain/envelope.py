"""Envelope encryption of managed secret keys at rest.

Each key version gets a fresh random 32-byte data key (DEK). The DEK encrypts the
secret key; the service's key-encryption key (KEK) encrypts the DEK. Both with
AES-256-GCM and random 12-byte nonces. Format of the stored blob (all lengths fixed
except the last field)::

    offset  bytes          field
    0       1              format version, 0x01
    1       12             nonce of the DEK wrap
    13      48             AES-256-GCM(KEK, DEK, aad)        (32-byte DEK + 16-byte tag)
    61      12             nonce of the secret key encryption
    73      len(sk) + 16   AES-256-GCM(DEK, secret key, aad)

    aad = 0x01 || b"x0tta6bl4/envelope/v1" || u16(len(name)) || name
          || u32(version) || u16(len(type)) || type          (big-endian, UTF-8)

A key of a tenant other than ``default`` is sealed in format ``0x02``, whose
associated data also binds the tenant::

    aad = 0x02 || b"x0tta6bl4/envelope/v2" || u16(len(tenant)) || tenant
          || u16(len(name)) || name || u32(version) || u16(len(type)) || type

The associated data binds the blob to its tenant, key name, version and type, so a
row copied onto another key, version or tenant (or relabelled with another type)
fails to open instead of silently serving someone else's key. Lengths are prefixed
so that no two (tenant, name, version, type) tuples share an encoding. Keys of the
``default`` tenant keep format ``0x01``, so keys sealed before tenants existed open
as they are; a ``0x01`` blob opens only for ``default``, a ``0x02`` one only for the
tenant it names.

Why a DEK per version rather than the KEK directly: a KEK rotation then re-wraps
48-byte DEKs only, and the KEK encrypts one short value per version (far from
AES-GCM's random-nonce limits). KEK rotation itself (re-wrapping every DEK under a
new KEK, with a KEK id in the format) is not built yet: the format version byte is
where it will go. Today a KEK change makes every stored key unreadable.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from x0_common.principal import DEFAULT_TENANT
from x0_crypto.errors import EnvelopeError

FORMAT_V1 = 0x01
FORMAT_V2 = 0x02
_LABEL = b"x0tta6bl4/envelope/v1"
_LABEL_V2 = b"x0tta6bl4/envelope/v2"
_NONCE = 12
_KEY = 32
_TAG = 16
_WRAPPED = _KEY + _TAG
_HEADER = 1 + _NONCE + _WRAPPED + _NONCE
# The smallest blob: a header and an empty secret key's tag.
MIN_SEALED_BYTES = _HEADER + _TAG


def _format(tenant: str) -> int:
    return FORMAT_V1 if tenant == DEFAULT_TENANT else FORMAT_V2


def _aad(tenant: str, name: str, version: int, key_type: str) -> bytes:
    name_bytes, type_bytes = name.encode(), key_type.encode()
    if tenant == DEFAULT_TENANT:
        prefix = bytes([FORMAT_V1]) + _LABEL
    else:
        tenant_bytes = tenant.encode()
        prefix = b"".join(
            (bytes([FORMAT_V2]), _LABEL_V2, struct.pack(">H", len(tenant_bytes)), tenant_bytes)
        )
    return b"".join(
        (
            prefix,
            struct.pack(">H", len(name_bytes)),
            name_bytes,
            struct.pack(">I", version),
            struct.pack(">H", len(type_bytes)),
            type_bytes,
        )
    )


def _check_kek(kek: bytes) -> None:
    if len(kek) != _KEY:
        msg = f"the key-encryption key must be {_KEY} bytes"
        raise ValueError(msg)


def seal(
    kek: bytes,
    *,
    tenant: str = DEFAULT_TENANT,
    name: str,
    version: int,
    key_type: str,
    secret_key: bytes,
) -> bytes:
    """The stored form of ``secret_key`` for this tenant, key name, version and type."""
    _check_kek(kek)
    aad = _aad(tenant, name, version, key_type)
    dek = AESGCM.generate_key(bit_length=256)
    wrap_nonce, data_nonce = os.urandom(_NONCE), os.urandom(_NONCE)
    wrapped = AESGCM(kek).encrypt(wrap_nonce, dek, aad)
    body = AESGCM(dek).encrypt(data_nonce, secret_key, aad)
    return bytes([_format(tenant)]) + wrap_nonce + wrapped + data_nonce + body


def open_sealed(
    kek: bytes,
    *,
    tenant: str = DEFAULT_TENANT,
    name: str,
    version: int,
    key_type: str,
    sealed: bytes,
) -> bytes:
    """The secret key inside ``sealed``; :class:`EnvelopeError` if it does not open (or
    was sealed for another tenant)."""
    _check_kek(kek)
    if len(sealed) < MIN_SEALED_BYTES or sealed[0] != _format(tenant):
        raise EnvelopeError
    aad = _aad(tenant, name, version, key_type)
    wrap_nonce = sealed[1 : 1 + _NONCE]
    wrapped = sealed[1 + _NONCE : 1 + _NONCE + _WRAPPED]
    data_nonce = sealed[1 + _NONCE + _WRAPPED : _HEADER]
    try:
        dek = AESGCM(kek).decrypt(wrap_nonce, wrapped, aad)
        return AESGCM(dek).decrypt(data_nonce, sealed[_HEADER:], aad)
    except InvalidTag:
        raise EnvelopeError from None
