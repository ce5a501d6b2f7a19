"""X-Wing (draft-connolly-cfrg-xwing-kem-10) against the draft's vectors, and its edges.

Reached with the vectors: key generation from the seed (``pk``), decapsulation of the
vector ``ct`` with the vector ``sk`` (``ss``), and the derandomised encapsulation
(``ct`` and ``ss``) with the test-only reference ML-KEM-768 supplying the
``m``-derandomised half that pyca cannot.
"""

from __future__ import annotations

import hashlib

import pytest

from x0_crypto.domain import InvalidInput, Registry
from x0_crypto.domain.hybrid import xwing

from .reference import mlkem as ref
from .vectors import xwing as vectors

pytestmark = pytest.mark.unit

MLKEM768 = ref.PARAMS["ML-KEM-768"]


def reference_encaps(pk_m: bytes, m: bytes) -> tuple[bytes, bytes]:
    """ML-KEM-768 Encaps_internal(pk_M, m) -> (ss_M, ct_M), as X-Wing's derand path wants."""
    shared, ciphertext = ref.encaps(MLKEM768, pk_m, m)
    return shared, ciphertext


def test_label_and_sizes(registry: Registry) -> None:
    assert xwing.XWING_LABEL.hex() == "5c2e2f2f5e5c"
    info = registry.info("X-Wing")
    assert (info.kind, info.backend) == ("kem", "openssl")
    assert info.sizes == xwing.SIZES
    assert (info.sizes.public_key, info.sizes.ciphertext) == (1216, 1120)


@pytest.mark.parametrize("vector", vectors())
def test_keygen_from_seed(vector: dict[str, bytes]) -> None:
    assert vector["seed"] == vector["sk"]
    assert xwing.public_key_from_seed(vector["sk"]) == vector["pk"]


@pytest.mark.parametrize("vector", vectors())
def test_decapsulate_vector(vector: dict[str, bytes], registry: Registry) -> None:
    assert registry.kem("X-Wing").decapsulate(vector["sk"], vector["ct"]) == vector["ss"]


@pytest.mark.parametrize("vector", vectors())
def test_encapsulate_derand_vector(vector: dict[str, bytes]) -> None:
    ct, ss = xwing.encapsulate_derand(vector["pk"], vector["eseed"], reference_encaps)
    assert (ct, ss) == (vector["ct"], vector["ss"])


@pytest.mark.parametrize("vector", vectors())
def test_combiner_order(vector: dict[str, bytes]) -> None:
    """ss = SHA3-256(ss_M || ss_X || ct_X || pk_X || label), recomputed from the parts."""
    sk_m, sk_x, _, pk_x = xwing.expand_decapsulation_key(vector["sk"])
    ct_m, ct_x = vector["ct"][:1088], vector["ct"][1088:]
    ss_m, ss_x = sk_m.decapsulate(ct_m), xwing.x25519_raw(sk_x, ct_x)
    expected = hashlib.sha3_256(ss_m + ss_x + ct_x + pk_x + b"\\.//^\\").digest()
    assert expected == vector["ss"]


def test_round_trip(registry: Registry) -> None:
    kem = registry.kem("X-Wing")
    pk, sk = kem.keypair()
    assert xwing.public_key_from_seed(sk) == pk
    ct, ss = kem.encapsulate(pk)
    assert kem.decapsulate(sk, ct) == ss
    assert kem.encapsulate(pk) != (ct, ss)  # encapsulation is randomised


@pytest.mark.parametrize(
    "offset", [0, 1087, 1088, 1119], ids=["ct_M0", "ct_M-last", "ct_X0", "ct_X-last"]
)
def test_tampered_ciphertext_is_implicitly_rejected(offset: int, registry: Registry) -> None:
    kem = registry.kem("X-Wing")
    pk, sk = kem.keypair()
    ct, ss = kem.encapsulate(pk)
    tampered = bytearray(ct)
    tampered[offset] ^= 0x01
    other = kem.decapsulate(sk, bytes(tampered))
    assert len(other) == 32
    assert other != ss


def test_small_order_x25519_ciphertext_still_decapsulates(registry: Registry) -> None:
    """RFC 7748 gives zeros for a small-order point; X-Wing must not fail on it."""
    kem = registry.kem("X-Wing")
    pk, sk = kem.keypair()
    ct, _ = kem.encapsulate(pk)
    ct_low = ct[:1088] + bytes(32)  # u = 0 is a point of small order
    sk_m, _, _, pk_x = xwing.expand_decapsulation_key(sk)
    expected = xwing.combiner(sk_m.decapsulate(ct[:1088]), bytes(32), bytes(32), pk_x)
    assert kem.decapsulate(sk, ct_low) == expected


def test_small_order_public_key_still_encapsulates(registry: Registry) -> None:
    kem = registry.kem("X-Wing")
    pk, sk = kem.keypair()
    ct, ss = kem.encapsulate(pk[:1184] + bytes(32))
    sk_m, _, _, _ = xwing.expand_decapsulation_key(sk)
    ct_x = ct[1088:]
    assert ss == xwing.combiner(sk_m.decapsulate(ct[:1088]), bytes(32), ct_x, bytes(32))


def test_invalid_mlkem_half_of_public_key(registry: Registry) -> None:
    pk, _ = registry.kem("X-Wing").keypair()
    bad = b"\xff\xff" + pk[2:]  # first t_hat coefficient 4095 >= q
    with pytest.raises(InvalidInput, match="not a valid encapsulation key"):
        registry.kem("X-Wing").encapsulate(bad)
    with pytest.raises(InvalidInput):
        xwing.encapsulate_derand(bad, bytes(64), reference_encaps)
