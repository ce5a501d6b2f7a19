"""The session handshake (domain): both sides agree, and only on the exact transcript."""

from __future__ import annotations

import hashlib
import hmac
import struct

import pytest

from x0_crypto.domain import CheckedKem, InvalidInput, Registry
from x0_crypto.domain import session as s
from x0_crypto.domain.framing import length_prefixed

pytestmark = pytest.mark.unit


def rfc5869_hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF written out from RFC 5869 with hmac, independent of the code under test."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm, counter = okm + block, counter + 1
    return okm[:length]


def framed(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">I", len(field)) + field for field in fields)


@pytest.fixture(scope="module")
def xwing(registry: Registry) -> CheckedKem:
    return registry.kem("X-Wing")


@pytest.fixture(scope="module")
def parties(xwing: CheckedKem) -> dict[str, bytes]:
    pk_a, _ = xwing.keypair()
    pk_b, sk_b = xwing.keypair()
    return {"pk_a": pk_a, "pk_b": pk_b, "sk_b": sk_b}


def _accept(xwing: CheckedKem, parties: dict[str, bytes], opened: s.Initiated, **changes):
    args = {
        "responder_secret_key": parties["sk_b"],
        "responder_public_key": parties["pk_b"],
        "initiator_public_key": parties["pk_a"],
        "session_id": opened.session_id,
        "ciphertext": opened.ciphertext,
    } | changes
    return s.accept(xwing, **args)


def _initiate(xwing: CheckedKem, parties: dict[str, bytes]) -> s.Initiated:
    return s.initiate(
        xwing, initiator_public_key=parties["pk_a"], responder_public_key=parties["pk_b"]
    )


def test_both_sides_derive_equal_keys_every_time(xwing, parties) -> None:
    seen = set()
    for _ in range(50):
        opened = _initiate(xwing, parties)
        assert _accept(xwing, parties, opened) == opened.keys
        seen.add(opened.keys.initiator_to_responder)
    assert len(seen) == 50  # a fresh encapsulation and session id each time


def test_keys_follow_the_documented_construction(xwing, parties) -> None:
    opened = _initiate(xwing, parties)
    shared = xwing.decapsulate(parties["sk_b"], opened.ciphertext)
    transcript = framed(
        b"x0tta6bl4/session/v1",
        opened.session_id.encode(),
        parties["pk_a"],
        parties["pk_b"],
        opened.ciphertext,
    )
    salt = hashlib.sha256(transcript).digest()
    assert opened.keys.initiator_to_responder == rfc5869_hkdf_sha256(
        shared, salt, b"x0tta6bl4/session/v1/i2r"
    )
    assert opened.keys.responder_to_initiator == rfc5869_hkdf_sha256(
        shared, salt, b"x0tta6bl4/session/v1/r2i"
    )


def test_directions_differ_and_keys_are_32_bytes(xwing, parties) -> None:
    keys = _initiate(xwing, parties).keys
    assert len(keys.initiator_to_responder) == len(keys.responder_to_initiator) == 32
    assert keys.initiator_to_responder != keys.responder_to_initiator


def test_session_ids_are_16_random_bytes_in_hex(xwing, parties) -> None:
    ids = {_initiate(xwing, parties).session_id for _ in range(20)}
    assert len(ids) == 20
    for session_id in ids:
        assert len(bytes.fromhex(session_id)) == 16


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


@pytest.mark.parametrize(
    "change",
    [
        "session_id",
        "initiator_public_key",
        "responder_public_key",
        "ciphertext_mlkem_part",
        "ciphertext_x25519_part",
    ],
)
def test_any_change_gives_b_other_keys_without_error(xwing, parties, change) -> None:
    opened = _initiate(xwing, parties)
    other_pk, _ = xwing.keypair()
    changes = {
        "session_id": {"session_id": s.new_session_id()},
        "initiator_public_key": {"initiator_public_key": other_pk},
        "responder_public_key": {"responder_public_key": other_pk},
        # X-Wing ct = ct_M (1088 bytes) || ct_X (32 bytes): tamper with each half.
        "ciphertext_mlkem_part": {"ciphertext": _flip(opened.ciphertext, 5)},
        "ciphertext_x25519_part": {"ciphertext": _flip(opened.ciphertext, 1100)},
    }[change]
    keys = _accept(xwing, parties, opened, **changes)
    assert keys.initiator_to_responder != opened.keys.initiator_to_responder
    assert keys.responder_to_initiator != opened.keys.responder_to_initiator


def test_transcript_is_length_prefixed_so_field_boundaries_matter() -> None:
    one = s.transcript(
        session_id="ab", initiator_public_key=b"c", responder_public_key=b"", ciphertext=b"d"
    )
    other = s.transcript(
        session_id="a", initiator_public_key=b"bc", responder_public_key=b"", ciphertext=b"d"
    )
    assert one != other
    assert one == framed(b"x0tta6bl4/session/v1", b"ab", b"c", b"", b"d")
    assert length_prefixed(b"ab", b"c") != length_prefixed(b"a", b"bc")
    # Swapping A and B is a different transcript too: roles are bound.
    assert s.transcript(
        session_id="x", initiator_public_key=b"A", responder_public_key=b"B", ciphertext=b""
    ) != s.transcript(
        session_id="x", initiator_public_key=b"B", responder_public_key=b"A", ciphertext=b""
    )


def test_wrong_lengths_are_invalid_input(xwing, parties) -> None:
    opened = _initiate(xwing, parties)
    with pytest.raises(InvalidInput) as caught:
        s.initiate(xwing, initiator_public_key=b"short", responder_public_key=parties["pk_b"])
    assert caught.value.field == "initiator_public_key"
    with pytest.raises(InvalidInput) as caught:
        _accept(xwing, parties, opened, ciphertext=opened.ciphertext[:-1])
    assert caught.value.field == "ciphertext"
    with pytest.raises(InvalidInput) as caught:
        _accept(xwing, parties, opened, initiator_public_key=parties["pk_a"] + b"\0")
    assert caught.value.field == "initiator_public_key"


def test_only_x_wing_is_defined(registry: Registry, parties) -> None:
    with pytest.raises(ValueError, match="X-Wing"):
        s.initiate(
            registry.kem("ML-KEM-768"),
            initiator_public_key=parties["pk_a"],
            responder_public_key=parties["pk_b"],
        )


def test_keys_never_show_in_repr(xwing, parties) -> None:
    opened = _initiate(xwing, parties)
    assert opened.keys.initiator_to_responder.hex() not in repr(opened)
    assert "redacted" in repr(opened.keys)
