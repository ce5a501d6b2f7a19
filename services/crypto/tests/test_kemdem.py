"""KEM-DEM encryption (pure): round trips on every KEM, strict parsing, clean failures."""

from __future__ import annotations

import base64
import hashlib
import os
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from x0_common.errors import InvalidInput, X0Error
from x0_crypto.domain import KEM_ALGORITHMS, DecryptionFailed, Registry, kemdem

pytestmark = pytest.mark.unit


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("algorithm", KEM_ALGORITHMS)
@pytest.mark.parametrize("aad", [None, b"", b"tenant=7"], ids=["no-aad", "empty-aad", "aad"])
@pytest.mark.parametrize("size", [0, 1, 70_000])
def test_round_trip(registry: Registry, algorithm: str, aad: bytes | None, size: int) -> None:
    kem = registry.kem(algorithm)
    public_key, secret_key = kem.keypair()
    plaintext = os.urandom(size)
    token = kemdem.encrypt(kem, public_key, 5, plaintext, aad)
    assert token.startswith("x0:v5:")
    parsed = kemdem.parse(token)
    assert parsed.version == 5
    assert len(parsed.blob) == kem.sizes.ciphertext + 12 + size + 16
    assert kemdem.decrypt(kem, secret_key, parsed, aad) == plaintext


def test_matches_the_documented_construction(registry: Registry) -> None:
    """Recompute the DEM from the shared secret by the docstring's recipe."""
    kem = registry.kem("ML-KEM-768")
    public_key, secret_key = kem.keypair()
    parsed = kemdem.parse(kemdem.encrypt(kem, public_key, 2, b"hello", b"ad"))
    kem_ct = parsed.blob[: kem.sizes.ciphertext]
    nonce = parsed.blob[kem.sizes.ciphertext : kem.sizes.ciphertext + 12]
    shared = kem.decapsulate(secret_key, kem_ct)
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=hashlib.sha256(kem_ct).digest(),
        info=b"x0tta6bl4/kemdem/v1\x00ML-KEM-768\x00" + struct.pack(">I", 2),
    ).derive(shared)
    body = parsed.blob[kem.sizes.ciphertext + 12 :]
    assert AESGCM(key).decrypt(nonce, body, b"ad") == b"hello"


@pytest.mark.parametrize("algorithm", KEM_ALGORITHMS)
def test_tampering_anywhere_fails_cleanly(registry: Registry, algorithm: str) -> None:
    kem = registry.kem(algorithm)
    public_key, secret_key = kem.keypair()
    blob = kemdem.parse(kemdem.encrypt(kem, public_key, 1, b"secret payload")).blob
    # A byte in the KEM ciphertext (both halves for X-Wing), the nonce, the body, the tag.
    for index in (0, kem.sizes.ciphertext - 1, kem.sizes.ciphertext, len(blob) - 20, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[index] ^= 0x80
        with pytest.raises(DecryptionFailed):
            kemdem.decrypt(kem, secret_key, kemdem.parse(f"x0:v1:{_b64(bytes(tampered))}"))


def test_wrong_aad_wrong_key_wrong_version_fail(registry: Registry) -> None:
    kem = registry.kem("X-Wing")
    public_key, secret_key = kem.keypair()
    _, other_secret = kem.keypair()
    token = kemdem.encrypt(kem, public_key, 1, b"payload", b"right")
    parsed = kemdem.parse(token)
    for aad in (b"wrong", None):
        with pytest.raises(DecryptionFailed):
            kemdem.decrypt(kem, secret_key, parsed, aad)
    with pytest.raises(DecryptionFailed):
        kemdem.decrypt(kem, other_secret, parsed, b"right")
    relabelled = kemdem.parse(token.replace("x0:v1:", "x0:v2:"))
    with pytest.raises(DecryptionFailed):
        kemdem.decrypt(kem, secret_key, relabelled, b"right")


def test_failure_leaks_nothing(registry: Registry) -> None:
    kem = registry.kem("ML-KEM-512")
    public_key, secret_key = kem.keypair()
    parsed = kemdem.parse(kemdem.encrypt(kem, public_key, 1, b"top-secret-plaintext"))
    with pytest.raises(DecryptionFailed) as caught:
        kemdem.decrypt(kem, secret_key, parsed, b"wrong")
    assert caught.value.code == "invalid_input"
    assert caught.value.details == {"reason": "decryption_failed"}
    assert caught.value.__cause__ is None


GOOD = _b64(bytes(range(40)))


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("", "malformed"),
        (f"x0:v1{GOOD}", "malformed"),
        (f"x1:v1:{GOOD}", "malformed"),
        (f"X0:v1:{GOOD}", "malformed"),
        (f" x0:v1:{GOOD}", "malformed"),
        (f"x0:v1:{GOOD}\n", "malformed"),
        (f"x0:v0:{GOOD}", "malformed"),
        (f"x0:v01:{GOOD}", "malformed"),
        (f"x0:v-1:{GOOD}", "malformed"),
        (f"x0:v:{GOOD}", "malformed"),
        ("x0:v1:", "malformed"),
        (f"x0:v1:{GOOD}==", "malformed"),
        ("x0:v1:ab+/", "malformed"),
        (f"x0:v99999999999:{GOOD}", "malformed"),
        (f"x0:v2147483648:{GOOD}", "version_out_of_range"),
        ("x0:v1:A", "bad_base64url"),
        ("x0:v1:AB", "bad_base64url"),  # 'B' leaves unused bits set: not canonical
    ],
)
def test_parse_is_strict(token: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        kemdem.parse(token)
    assert caught.value.details == {"field": "ciphertext", "reason": reason}


@pytest.mark.parametrize("algorithm", KEM_ALGORITHMS)
def test_short_blob_is_invalid_input_not_a_crash(registry: Registry, algorithm: str) -> None:
    kem = registry.kem(algorithm)
    _, secret_key = kem.keypair()
    for length in (1, kem.sizes.ciphertext, kem.sizes.ciphertext + 12 + 15):
        parsed = kemdem.parse(f"x0:v1:{_b64(bytes(length))}")
        with pytest.raises(X0Error) as caught:
            kemdem.decrypt(kem, secret_key, parsed)
        assert not isinstance(caught.value, DecryptionFailed)
        assert (caught.value.code, caught.value.details["reason"]) == ("invalid_input", "too short")
