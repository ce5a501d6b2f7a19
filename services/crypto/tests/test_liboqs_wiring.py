"""The liboqs backend's calls, against a stand-in with liboqs-python's API (``fake_oqs``).

Where liboqs is installed, ``test_liboqs.py`` checks the real library; here the
subject is our side of the API: argument order, key handling, the FIPS 203 input
checks the backend runs before liboqs, error mapping and the registry's choice.
"""

from __future__ import annotations

import pytest

from x0_crypto.domain import (
    BackendUnavailable,
    CheckedKem,
    CheckedSignature,
    InvalidInput,
    build_registry,
)
from x0_crypto.domain.backends import liboqs
from x0_crypto.domain.backends.openssl import OpenSslKem, OpenSslSignature

from .fake_oqs import as_module as stand_in_oqs
from .vectors import Case, acvp

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(liboqs, "load_oqs", stand_in_oqs)
    monkeypatch.setattr(liboqs, "find_liboqs", lambda: "/stand-in/liboqs.so")


def test_registry_picks_liboqs_for_ml_kem_512_only() -> None:
    backends = {info.name: info.backend for info in build_registry().list_algorithms()}
    assert backends.pop("ML-KEM-512") == "liboqs"
    assert set(backends.values()) == {"openssl"}


@pytest.mark.parametrize("name", ["ML-KEM-768", "ML-KEM-1024"])
def test_kem_round_trips_with_openssl(name: str) -> None:
    oqs_kem, ssl_kem = CheckedKem(liboqs.LiboqsKem(name)), CheckedKem(OpenSslKem(name))
    oqs_pk, oqs_sk = oqs_kem.keypair()
    ssl_pk, ssl_sk = ssl_kem.keypair()
    ct, ss = ssl_kem.encapsulate(oqs_pk)
    assert oqs_kem.decapsulate(oqs_sk, ct) == ss
    ct, ss = oqs_kem.encapsulate(ssl_pk)
    assert ssl_kem.decapsulate(ssl_sk, ct) == ss


@pytest.mark.parametrize(
    ("name", "case"), acvp("ML-KEM-encapDecap-FIPS203.json", function="decapsulation")
)
def test_kem_decapsulation_vectors(name: str, case: Case) -> None:
    assert CheckedKem(liboqs.LiboqsKem(name)).decapsulate(case["dk"], case["c"]) == case["k"]


def test_kem_input_checks_run_before_liboqs() -> None:
    kem = CheckedKem(liboqs.LiboqsKem("ML-KEM-512"))
    public_key, secret_key = kem.keypair()
    with pytest.raises(InvalidInput, match="not a valid encapsulation key"):
        kem.encapsulate(b"\xff\xff" + public_key[2:])
    bad_hash = secret_key[:-64] + bytes([secret_key[-64] ^ 1]) + secret_key[-63:]
    with pytest.raises(InvalidInput, match="not a valid decapsulation key"):
        kem.decapsulate(bad_hash, bytes(kem.sizes.ciphertext))
    with pytest.raises(InvalidInput) as err:  # would be zero-padded by liboqs-python
        kem.encapsulate(public_key[:-1])
    assert (err.value.expected, err.value.actual) == (800, 799)


@pytest.mark.parametrize("name", ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"])
def test_signature_round_trips_with_openssl(name: str) -> None:
    oqs_sig, ssl_sig = (
        CheckedSignature(liboqs.LiboqsSignature(name)),
        CheckedSignature(OpenSslSignature(name)),
    )
    oqs_pk, oqs_sk = oqs_sig.keypair()
    assert len(oqs_sk) == oqs_sig.sizes.secret_key > 32  # expanded, not a seed
    signature = oqs_sig.sign(oqs_sk, b"m")
    assert ssl_sig.verify(oqs_pk, b"m", signature)
    assert oqs_sig.verify(oqs_pk, b"m", signature)
    assert not oqs_sig.verify(oqs_pk, b"n", signature)
    ssl_pk, ssl_sk = ssl_sig.keypair()
    assert oqs_sig.verify(ssl_pk, b"m", ssl_sig.sign(ssl_sk, b"m"))


def test_unknown_mechanism_is_backend_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match="not enabled"):
        liboqs.LiboqsKem("Kyber-9000")
    with pytest.raises(BackendUnavailable, match="not enabled"):
        liboqs.LiboqsSignature("Dilithium-9000")
