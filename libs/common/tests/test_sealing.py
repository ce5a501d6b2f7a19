"""Sealed values open only with a listed key and only with the headers they were bound to."""

from __future__ import annotations

import os

import pytest

from x0_common.events.envelope import Headers
from x0_common.kafka.sealing import SEAL_HEADER, Sealer, SealError, key_id

pytestmark = pytest.mark.unit

HEADERS = {
    Headers.TYPE: "crypto.kem.decapsulate.v1",
    Headers.CORRELATION_ID: "c-1",
    Headers.REPLY_TO: "x0.gateway.replies.g-0",
    Headers.DEADLINE: "1800000000000",
    Headers.PRINCIPAL: '{"tenant":"acme","subject":"k1","scopes":["crypto"]}',
}


def test_a_sealed_value_hides_the_plaintext_and_opens_back() -> None:
    sealer = Sealer(os.urandom(32))
    headers = dict(HEADERS)
    secret = b'{"secret_key": "c2VjcmV0LWtleS1tYXRlcmlhbA"}'

    sealed = sealer.seal(secret, headers)

    assert b"secret_key" not in sealed
    assert len(headers[SEAL_HEADER]) == 16
    assert sealer.open(sealed, headers) == secret


@pytest.mark.parametrize(
    "changed",
    [Headers.TYPE, Headers.CORRELATION_ID, Headers.REPLY_TO, Headers.DEADLINE, Headers.PRINCIPAL],
)
def test_a_value_moved_to_other_headers_does_not_open(changed: str) -> None:
    sealer = Sealer(os.urandom(32))
    headers = dict(HEADERS)
    sealed = sealer.seal(b"{}", headers)

    with pytest.raises(SealError, match="does not open"):
        sealer.open(sealed, {**headers, changed: headers[changed] + "x"})


def test_tampering_unsealed_and_unknown_keys_are_refused() -> None:
    sealer = Sealer(os.urandom(32))
    headers = dict(HEADERS)
    sealed = sealer.seal(b"{}", headers)
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])

    with pytest.raises(SealError, match="does not open"):
        sealer.open(flipped, headers)
    with pytest.raises(SealError, match="not sealed"):
        sealer.open(b"{}", HEADERS)
    with pytest.raises(SealError, match="does not hold"):
        Sealer(os.urandom(32)).open(sealed, headers)
    with pytest.raises(SealError, match="truncated"):
        sealer.open(sealed[:10], headers)


def test_rotation_opens_old_values_and_seals_with_the_new_key() -> None:
    old, new = os.urandom(32), os.urandom(32)
    headers = dict(HEADERS)
    sealed_before = Sealer(old).seal(b"before", headers)
    rotated = Sealer(new, previous=[old])

    assert rotated.open(sealed_before, headers) == b"before"
    fresh = dict(HEADERS)
    rotated.seal(b"after", fresh)
    assert fresh[SEAL_HEADER] == key_id(new) != key_id(old)


def test_keys_must_be_32_bytes() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Sealer(os.urandom(16))
