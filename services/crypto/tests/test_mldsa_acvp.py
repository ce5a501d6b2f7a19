"""NIST ACVP ML-DSA keyGen vectors (FIPS 204) through the OpenSSL backend.

The backend stores the 32-byte seed ``xi``, which is the vector's ``seed``. Reached:
the public key derived from it, and signing with it (a signature the vector's public
key verifies). Not reached: the vector's expanded ``sk``, which pyca neither exports
nor imports.
"""

from __future__ import annotations

import pytest

from x0_crypto.domain import Registry
from x0_crypto.domain.backends.openssl import OpenSslSignature

from .vectors import Case, acvp

pytestmark = pytest.mark.unit

KEYGEN = "ML-DSA-keyGen-FIPS204.json"


@pytest.mark.parametrize(("name", "case"), acvp(KEYGEN))
def test_keygen_from_seed(name: str, case: Case, registry: Registry) -> None:
    assert OpenSslSignature(name).public_key_from_seed(case["seed"]) == case["pk"]
    # The seed is the stored secret key: what it signs, the vector's public key accepts.
    scheme = registry.signature(name)
    message = f"ACVP {name} tc{case['tcId']}".encode()
    signature = scheme.sign(case["seed"], message)
    assert scheme.verify(case["pk"], message, signature)
    assert not scheme.verify(case["pk"], message + b"!", signature)
