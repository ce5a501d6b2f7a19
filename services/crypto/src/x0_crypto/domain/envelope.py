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
AES-GCM's random-nonce limits).

KEK ids (rotation). Blobs sealed now carry the id of the KEK that wrapped their DEK,
in formats ``0x03`` (tenant ``default``) and ``0x04`` (other tenants)::

    0       1              format version, 0x03 or 0x04
    1       8              KEK id: HMAC-SHA-256(KEK, b"x0tta6bl4/kek-id/v1")[:8]
    9       12             nonce of the DEK wrap
    21      48             AES-256-GCM(KEK, DEK, aad || b"kek" || KEK id)
    69      12             nonce of the secret key encryption
    81      len(sk) + 16   AES-256-GCM(DEK, secret key, aad)

``aad`` is the ``0x01``/``0x02`` associated data above, unchanged, so re-wrapping under
another KEK (:func:`rewrap`) rewrites the header only and leaves the secret key's
ciphertext as it is. The id names the KEK (a fingerprint, never the key) so a reader
picks the right one of its :class:`Keyring`; it is also bound into the wrap's
associated data. ``0x01``/``0x02`` blobs (from before KEK ids) still open: each
configured KEK is tried, the current one first.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from x0_common.principal import DEFAULT_TENANT
from x0_crypto.errors import EnvelopeError

FORMAT_V1 = 0x01
FORMAT_V2 = 0x02
FORMAT_V3 = 0x03
FORMAT_V4 = 0x04
KEK_ID_BYTES = 8
# The label of blobs without a KEK id, where a metric or report names a KEK.
NO_KEK_ID = "none"
_KEK_ID_LABEL = b"x0tta6bl4/kek-id/v1"
_LABEL = b"x0tta6bl4/envelope/v1"
_LABEL_V2 = b"x0tta6bl4/envelope/v2"
_NONCE = 12
_KEY = 32
_TAG = 16
_WRAPPED = _KEY + _TAG
_HEADER = 1 + _NONCE + _WRAPPED + _NONCE
# The smallest blob: a header and an empty secret key's tag.
MIN_SEALED_BYTES = _HEADER + _TAG


def kek_id(kek: bytes) -> bytes:
    """The KEK's 8-byte id: a keyed fingerprint that names the key and reveals nothing
    of it (HMAC-SHA-256 under the KEK itself, truncated)."""
    _check_kek(kek)
    return hmac.new(kek, _KEK_ID_LABEL, hashlib.sha256).digest()[:KEK_ID_BYTES]


@dataclass(frozen=True, eq=False)
class Keyring:
    """The current KEK (seals everything new) and the previous ones (still open old
    blobs until :func:`rewrap` moves them to the current one). Keys never in a repr."""

    current: bytes = field(repr=False)
    previous: tuple[bytes, ...] = field(default=(), repr=False)
    _by_id: dict[bytes, bytes] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_id: dict[bytes, bytes] = {}
        for kek in (self.current, *self.previous):
            by_id.setdefault(kek_id(kek), kek)
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def of(cls, keks: Keyring | bytes) -> Keyring:
        """``keks`` as a keyring (a bare KEK is a keyring of one)."""
        return keks if isinstance(keks, Keyring) else cls(keks)

    @property
    def current_id(self) -> bytes:
        """The id new blobs are sealed with."""
        return kek_id(self.current)

    def ids(self) -> list[str]:
        """Hex ids of every configured KEK, the current one first."""
        return [key_id.hex() for key_id in self._by_id]

    def get(self, key_id: bytes) -> bytes | None:
        """The configured KEK with this id, if any."""
        return self._by_id.get(key_id)

    def all(self) -> Iterable[bytes]:
        """Every configured KEK, the current one first."""
        return self._by_id.values()


def _format(tenant: str) -> int:
    return FORMAT_V1 if tenant == DEFAULT_TENANT else FORMAT_V2


def _id_format(tenant: str) -> int:
    return FORMAT_V3 if tenant == DEFAULT_TENANT else FORMAT_V4


def wrapped_by(sealed: bytes) -> str:
    """The hex id of the KEK that wrapped ``sealed``, or :data:`NO_KEK_ID` for a blob
    from before KEK ids (or one too short to say)."""
    if len(sealed) > KEK_ID_BYTES and sealed[0] in (FORMAT_V3, FORMAT_V4):
        return sealed[1 : 1 + KEK_ID_BYTES].hex()
    return NO_KEK_ID


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
    keks: Keyring | bytes,
    *,
    tenant: str = DEFAULT_TENANT,
    name: str,
    version: int,
    key_type: str,
    secret_key: bytes,
) -> bytes:
    """The stored form of ``secret_key`` for this tenant, key name, version and type,
    its DEK wrapped under the current KEK (and naming it)."""
    ring = Keyring.of(keks)
    aad = _aad(tenant, name, version, key_type)
    dek = AESGCM.generate_key(bit_length=256)
    data_nonce = os.urandom(_NONCE)
    body = AESGCM(dek).encrypt(data_nonce, secret_key, aad)
    return _wrap(ring, tenant, aad, dek) + data_nonce + body


def _wrap(ring: Keyring, tenant: str, aad: bytes, dek: bytes) -> bytes:
    """Format byte, current KEK id, wrap nonce and the DEK wrapped under the current KEK."""
    key_id, wrap_nonce = ring.current_id, os.urandom(_NONCE)
    wrapped = AESGCM(ring.current).encrypt(wrap_nonce, dek, aad + b"kek" + key_id)
    return bytes([_id_format(tenant)]) + key_id + wrap_nonce + wrapped


def _open_dek(ring: Keyring, tenant: str, aad: bytes, sealed: bytes) -> tuple[bytes, int]:
    """The DEK of ``sealed`` and the offset of its data nonce; :class:`EnvelopeError`
    if no configured KEK opens it (or it is malformed, or bound to another tenant)."""
    if len(sealed) >= MIN_SEALED_BYTES and sealed[0] == _format(tenant):
        # From before KEK ids: try each configured KEK, the current one first.
        wrap_nonce, wrapped = sealed[1 : 1 + _NONCE], sealed[1 + _NONCE : 1 + _NONCE + _WRAPPED]
        for kek in ring.all():
            try:
                return AESGCM(kek).decrypt(wrap_nonce, wrapped, aad), 1 + _NONCE + _WRAPPED
            except InvalidTag:
                continue
        raise EnvelopeError
    start = 1 + KEK_ID_BYTES
    if len(sealed) < MIN_SEALED_BYTES + KEK_ID_BYTES or sealed[0] != _id_format(tenant):
        raise EnvelopeError
    key_id = sealed[1:start]
    wrapping = ring.get(key_id)
    if wrapping is None:
        raise EnvelopeError
    wrap_nonce = sealed[start : start + _NONCE]
    wrapped = sealed[start + _NONCE : start + _NONCE + _WRAPPED]
    try:
        return AESGCM(wrapping).decrypt(wrap_nonce, wrapped, aad + b"kek" + key_id), (
            start + _NONCE + _WRAPPED
        )
    except InvalidTag:
        raise EnvelopeError from None


def open_sealed(
    keks: Keyring | bytes,
    *,
    tenant: str = DEFAULT_TENANT,
    name: str,
    version: int,
    key_type: str,
    sealed: bytes,
) -> bytes:
    """The secret key inside ``sealed``; :class:`EnvelopeError` if it does not open (no
    configured KEK wrapped it, or it is tampered or sealed for another tenant)."""
    ring = Keyring.of(keks)
    aad = _aad(tenant, name, version, key_type)
    dek, data_at = _open_dek(ring, tenant, aad, sealed)
    try:
        return AESGCM(dek).decrypt(
            sealed[data_at : data_at + _NONCE], sealed[data_at + _NONCE :], aad
        )
    except InvalidTag:
        raise EnvelopeError from None


def rewrap(
    keks: Keyring | bytes,
    *,
    tenant: str = DEFAULT_TENANT,
    name: str,
    version: int,
    key_type: str,
    sealed: bytes,
) -> bytes:
    """``sealed`` with its DEK re-wrapped under the current KEK (the secret key's
    ciphertext kept as it is); :class:`EnvelopeError` if it does not open. The whole
    blob is opened first, so a row that would not serve is never rewritten."""
    ring = Keyring.of(keks)
    aad = _aad(tenant, name, version, key_type)
    dek, data_at = _open_dek(ring, tenant, aad, sealed)
    try:
        AESGCM(dek).decrypt(sealed[data_at : data_at + _NONCE], sealed[data_at + _NONCE :], aad)
    except InvalidTag:
        raise EnvelopeError from None
    return _wrap(ring, tenant, aad, dek) + sealed[data_at:]
