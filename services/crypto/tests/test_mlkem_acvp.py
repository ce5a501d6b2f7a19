"""NIST ACVP ML-KEM vectors (FIPS 203) through every backend that can reach them.

What each backend's API can reach:

- openssl (pyca; ML-KEM-768/1024): keys only as the 64-byte seed ``d || z``, no
  expanded ``dk`` in or out, no derandomised encapsulation. Reached: keyGen ``ek`` from
  ``(d, z)`` (the ``dk`` field is not comparable); its seed key decapsulating a
  reference ciphertext for that key; its random encapsulation to each encapsulation
  vector's ``ek``, checked by decapsulating with the vector's ``dk``; the encapsulation
  key check. Not reached: the decapsulation and decapsulation-key-check groups (they
  give only an expanded ``dk``) and the ``m``-derandomised encapsulation outputs.
- pqcrypto (all three sets; the service's ML-KEM-512): expanded ``dk`` in and out, no
  seeded keygen, no derandomised encapsulation. Reached: decapsulation of every
  encapsulation and decapsulation case with the vector's ``dk``; both key checks; its
  random encapsulation decapsulated with the vector's ``dk``. Not reached: keyGen
  (ML-KEM-512 keyGen is covered by the reference below) and the derandomised outputs.
- the test-only reference (``reference/mlkem.py``): everything, since the tests pick
  its randomness; it must pass every case before other tests lean on it.
"""

from __future__ import annotations

import hashlib

import pytest

from x0_crypto.domain import CheckedKem, InvalidInput
from x0_crypto.domain.backends.openssl import OpenSslKem
from x0_crypto.domain.backends.pqcrypto import PqcryptoKem
from x0_crypto.domain.mlkem_checks import check_decapsulation_key, check_encapsulation_key

from .reference import mlkem as ref
from .vectors import Case, acvp

pytestmark = pytest.mark.unit

KEYGEN = "ML-KEM-keyGen-FIPS203.json"
ENCAP_DECAP = "ML-KEM-encapDecap-FIPS203.json"
OPENSSL_SETS = ("ML-KEM-768", "ML-KEM-1024")


def openssl(name: str) -> CheckedKem:
    return CheckedKem(OpenSslKem(name))


def pqcrypto(name: str) -> CheckedKem:
    return CheckedKem(PqcryptoKem(name))


@pytest.mark.parametrize(("name", "case"), acvp(KEYGEN))
def test_keygen_reference(name: str, case: Case) -> None:
    assert ref.keygen(ref.PARAMS[name], case["d"], case["z"]) == (case["ek"], case["dk"])


@pytest.mark.parametrize(("name", "case"), acvp(KEYGEN, sets=OPENSSL_SETS))
def test_keygen_openssl_seed(name: str, case: Case) -> None:
    backend = OpenSslKem(name)
    seed = case["d"] + case["z"]
    assert backend.public_key_from_seed(seed) == case["ek"]
    # The seed *is* the stored secret key: it must decapsulate what was sent to ek.
    shared, ciphertext = ref.encaps(ref.PARAMS[name], case["ek"], hashlib.sha3_256(seed).digest())
    assert openssl(name).decapsulate(seed, ciphertext) == shared


@pytest.mark.parametrize(("name", "case"), acvp(ENCAP_DECAP, function="encapsulation"))
def test_encapsulation_reference(name: str, case: Case) -> None:
    assert ref.encaps(ref.PARAMS[name], case["ek"], case["m"]) == (case["k"], case["c"])


@pytest.mark.parametrize(("name", "case"), acvp(ENCAP_DECAP, function="encapsulation"))
def test_encapsulation_vectors_decapsulate_pqcrypto(name: str, case: Case) -> None:
    assert pqcrypto(name).decapsulate(case["dk"], case["c"]) == case["k"]


@pytest.mark.parametrize(("name", "case"), acvp(ENCAP_DECAP, function="encapsulation"))
def test_backend_encapsulation_to_vector_key(name: str, case: Case) -> None:
    """Each backend's (random) encapsulation to the vector's ek opens with its dk."""
    backends = [pqcrypto(name)] + ([openssl(name)] if name in OPENSSL_SETS else [])
    for backend in backends:
        ciphertext, shared = backend.encapsulate(case["ek"])
        assert ref.decaps(ref.PARAMS[name], case["dk"], ciphertext) == shared, backend.backend
        assert pqcrypto(name).decapsulate(case["dk"], ciphertext) == shared, backend.backend


@pytest.mark.parametrize(("name", "case"), acvp(ENCAP_DECAP, function="decapsulation"))
def test_decapsulation(name: str, case: Case) -> None:
    """Valid and modified ciphertexts (implicit rejection) give the vector's k."""
    assert ref.decaps(ref.PARAMS[name], case["dk"], case["c"]) == case["k"]
    assert pqcrypto(name).decapsulate(case["dk"], case["c"]) == case["k"]


@pytest.mark.parametrize(("name", "case"), acvp(ENCAP_DECAP, function="decapsulationKeyCheck"))
def test_decapsulation_key_check(name: str, case: Case) -> None:
    params = ref.PARAMS[name]
    assert ref.dk_hash_ok(params, case["dk"]) is case["testPassed"]
    ciphertext = bytes(params.ct_len)
    if case["testPassed"]:
        check_decapsulation_key(name, case["dk"])
        assert len(pqcrypto(name).decapsulate(case["dk"], ciphertext)) == 32
    else:
        with pytest.raises(InvalidInput, match="not a valid decapsulation key"):
            check_decapsulation_key(name, case["dk"])
        with pytest.raises(InvalidInput) as err:
            pqcrypto(name).decapsulate(case["dk"], ciphertext)
        assert err.value.field == "secret_key"


@pytest.mark.parametrize(("name", "case"), acvp(ENCAP_DECAP, function="encapsulationKeyCheck"))
def test_encapsulation_key_check(name: str, case: Case) -> None:
    """The file's invalid keys all have the wrong length (see data/README.md)."""
    backends = [pqcrypto(name)] + ([openssl(name)] if name in OPENSSL_SETS else [])
    for backend in backends:
        if case["testPassed"]:
            ciphertext, _ = backend.encapsulate(case["ek"])
            assert len(ciphertext) == backend.sizes.ciphertext
        else:
            with pytest.raises(InvalidInput) as err:
                backend.encapsulate(case["ek"])
            assert (err.value.field, err.value.actual) == ("public_key", len(case["ek"]))


def _with_coefficient(ek: bytes, index: int, value: int) -> bytes:
    """``ek`` with 12-bit coefficient ``index`` of t_hat replaced by ``value``."""
    coefficients = ref.decode12(ek[:-32])
    coefficients[index] = value
    packed = b"".join(
        ref.encode12(coefficients[i : i + 256]) for i in range(0, len(coefficients), 256)
    )
    return packed + ek[-32:]


@pytest.mark.parametrize(("name", "case"), acvp(KEYGEN)[::25])  # one key per parameter set
@pytest.mark.parametrize("value", [ref.Q, 4095])
def test_modulus_check_rejects_unreduced_coefficients(name: str, case: Case, value: int) -> None:
    """FIPS 203 section 7.2, built from valid keys since the ACVP file does not reach it."""
    params = ref.PARAMS[name]
    backends = [pqcrypto(name)] + ([openssl(name)] if name in OPENSSL_SETS else [])
    for index in (0, 255, 256 * params.k - 1):
        bad = _with_coefficient(case["ek"], index, value)
        assert not ref.ek_modulus_ok(params, bad)
        with pytest.raises(InvalidInput):
            check_encapsulation_key(name, bad)
        for backend in backends:
            with pytest.raises(InvalidInput) as err:
                backend.encapsulate(bad)
            assert err.value.reason == "not a valid encapsulation key", backend.backend
    check_encapsulation_key(name, _with_coefficient(case["ek"], 0, ref.Q - 1))
