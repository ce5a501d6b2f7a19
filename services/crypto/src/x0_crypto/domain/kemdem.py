"""KEM-DEM encryption with a managed KEM key (ML-KEM-512/768/1024, X-Wing).

To encrypt under version ``v`` of a key of algorithm ``alg``::

    kem_ct, ss = Encapsulate(public_key_v)
    key        = HKDF-SHA256(ikm=ss, salt=SHA-256(kem_ct), length=32,
                             info=b"x0tta6bl4/kemdem/v1" || 0x00 || alg || 0x00 || u32(v))
    nonce      = 12 random bytes
    aead_ct    = AES-256-GCM(key, nonce, plaintext, associated_data)
    ciphertext = "x0:v" || v || ":" || base64url-unpadded(kem_ct || nonce || aead_ct)

``kem_ct`` has the algorithm's fixed length, so the blob splits without a length
field. The salt binds the derived key to this exact KEM ciphertext and ``info`` to
the algorithm and version, so a ciphertext relabelled with another version fails.
Each message gets a fresh shared secret, hence a fresh AES key; the random nonce
costs 12 bytes and removes any reliance on that.

Parsing is strict (exact prefix, canonical base64url without padding, minimum
length): a malformed ciphertext is ``invalid_input``; one that parses but fails
authentication (tampered, wrong associated data, another key) is
:class:`DecryptionFailed`. Both are 400s: ML-KEM and X-Wing decapsulation never
fail (implicit rejection), so every such case ends in the AEAD tag check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from x0_common import errors as x0_errors
from x0_crypto.domain.checked import CheckedKem
from x0_crypto.errors import DecryptionFailed, InvalidInput

PREFIX = "x0:v"
_LABEL = b"x0tta6bl4/kemdem/v1"
_NONCE = 12
_TAG = 16
# Versions are PostgreSQL integers; ten digits, no leading zero, bounds the parse.
_TOKEN = re.compile(r"x0:v([1-9][0-9]{0,9}):([A-Za-z0-9_-]+)")
_MAX_VERSION = 2**31 - 1


@dataclass(frozen=True, slots=True)
class ParsedCiphertext:
    """The version a ciphertext names, and its binary blob."""

    version: int
    blob: bytes


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse(ciphertext: str) -> ParsedCiphertext:
    """Split ``x0:v<version>:<base64url>``; ``invalid_input`` (400) when malformed.

    Needs no key: the version it yields says which key version to load.
    """

    def bad(reason: str, text: str) -> x0_errors.InvalidInput:
        return x0_errors.InvalidInput(
            f"ciphertext {text}", details={"field": "ciphertext", "reason": reason}
        )

    match = _TOKEN.fullmatch(ciphertext)
    if match is None:
        raise bad("malformed", "must look like x0:v<version>:<base64url>")
    version = int(match.group(1))
    if version > _MAX_VERSION:
        raise bad("version_out_of_range", "names a version out of range")
    text = match.group(2)
    if len(text) % 4 == 1:
        raise bad("bad_base64url", "is not valid base64url")
    try:
        blob = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise bad("bad_base64url", "is not valid base64url") from None
    # Canonical only: unused trailing bits set would give two spellings of one blob.
    if _b64encode(blob) != text:
        raise bad("bad_base64url", "is not canonical base64url")
    return ParsedCiphertext(version=version, blob=blob)


def _derive(shared_secret: bytes, kem_ciphertext: bytes, algorithm: str, version: int) -> bytes:
    info = _LABEL + b"\x00" + algorithm.encode() + b"\x00" + struct.pack(">I", version)
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=hashlib.sha256(kem_ciphertext).digest(),
        info=info,
    ).derive(shared_secret)


def encrypt(
    kem: CheckedKem,
    public_key: bytes,
    version: int,
    plaintext: bytes,
    associated_data: bytes | None = None,
) -> str:
    """``plaintext`` encrypted to ``public_key`` (version ``version``), as text."""
    kem_ciphertext, shared_secret = kem.encapsulate(public_key)
    key = _derive(shared_secret, kem_ciphertext, kem.algorithm, version)
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(key).encrypt(nonce, plaintext, associated_data)
    return f"{PREFIX}{version}:{_b64encode(kem_ciphertext + nonce + sealed)}"


def decrypt(
    kem: CheckedKem,
    secret_key: bytes,
    parsed: ParsedCiphertext,
    associated_data: bytes | None = None,
) -> bytes:
    """The plaintext of ``parsed`` under ``secret_key`` (the version it names)."""
    kem_bytes = kem.sizes.ciphertext
    if len(parsed.blob) < kem_bytes + _NONCE + _TAG:
        raise InvalidInput(kem.algorithm, "ciphertext", reason="too short")
    kem_ciphertext = parsed.blob[:kem_bytes]
    nonce = parsed.blob[kem_bytes : kem_bytes + _NONCE]
    shared_secret = kem.decapsulate(secret_key, kem_ciphertext)
    key = _derive(shared_secret, kem_ciphertext, kem.algorithm, parsed.version)
    try:
        return AESGCM(key).decrypt(nonce, parsed.blob[kem_bytes + _NONCE :], associated_data)
    except InvalidTag:
        raise DecryptionFailed from None
