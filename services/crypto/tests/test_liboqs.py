"""liboqs: detection that never imports ``oqs``, and OpenSSL <-> liboqs interop.

The interop tests need the liboqs shared library; where it is absent they are skipped,
saying so. Everything else runs everywhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from x0_crypto.domain import (
    BackendUnavailable,
    CheckedKem,
    CheckedSignature,
    Registry,
    build_registry,
)
from x0_crypto.domain.backends import liboqs
from x0_crypto.domain.backends.openssl import OpenSslKem, OpenSslSignature
from x0_crypto.domain.backends.pqcrypto import PqcryptoKem

from .vectors import acvp

pytestmark = pytest.mark.unit

HAVE_LIBOQS = liboqs.find_liboqs() is not None
needs_liboqs = pytest.mark.skipif(
    not HAVE_LIBOQS,
    reason="liboqs shared library not installed (checked without importing oqs); "
    "set OQS_INSTALL_PATH or install liboqs to run the OpenSSL<->liboqs interop tests",
)


def test_detection_does_not_import_oqs() -> None:
    """In a fresh interpreter: detecting and building the registry leave ``oqs`` unimported
    unless the library is really there."""
    code = (
        "import sys\n"
        "from x0_crypto.domain import build_registry\n"
        "from x0_crypto.domain.backends.liboqs import find_liboqs\n"
        "found = find_liboqs()\n"
        "registry = build_registry()\n"
        "print(found is not None, 'oqs' in sys.modules, registry.info('ML-KEM-512').backend)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    expected = "True True liboqs" if HAVE_LIBOQS else "False False pqcrypto"
    assert result.stdout.split("\n")[-2] == expected


def test_unloadable_file_is_not_liboqs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A file named liboqs.so that is no shared library does not count as liboqs."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "liboqs.so").write_bytes(b"not an ELF file")
    monkeypatch.setenv("OQS_INSTALL_PATH", str(tmp_path))
    assert str(tmp_path / "lib" / "liboqs.so") in liboqs._candidate_paths()
    found = liboqs.find_liboqs.__wrapped__()
    assert found is None or found != str(tmp_path / "lib" / "liboqs.so")


def test_missing_library_is_backend_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(liboqs, "find_liboqs", lambda: None)
    with pytest.raises(BackendUnavailable) as err:
        liboqs.LiboqsKem("ML-KEM-512")
    assert err.value.code == "unavailable"
    assert err.value.backend == "liboqs"


def test_registry_falls_back_when_liboqs_is_unusable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(liboqs, "find_liboqs", lambda: None)
    assert build_registry(use_liboqs=True).info("ML-KEM-512").backend == "pqcrypto"


@needs_liboqs
@pytest.mark.parametrize("name", ["ML-KEM-512", "ML-KEM-768", "ML-KEM-1024"])
def test_kem_interop(name: str) -> None:
    oqs_kem = CheckedKem(liboqs.LiboqsKem(name))
    others = [CheckedKem(PqcryptoKem(name))]
    if name != "ML-KEM-512":
        others.append(CheckedKem(OpenSslKem(name)))
    oqs_pk, oqs_sk = oqs_kem.keypair()
    for other in others:
        other_pk, other_sk = other.keypair()
        ct, ss = other.encapsulate(oqs_pk)  # theirs -> liboqs
        assert oqs_kem.decapsulate(oqs_sk, ct) == ss, other.backend
        ct, ss = oqs_kem.encapsulate(other_pk)  # liboqs -> theirs
        assert other.decapsulate(other_sk, ct) == ss, other.backend
    # liboqs and pqcrypto share the expanded secret-key form: keys move between them.
    pq = CheckedKem(PqcryptoKem(name))
    pq_pk, pq_sk = pq.keypair()
    ct, ss = pq.encapsulate(pq_pk)
    assert oqs_kem.decapsulate(pq_sk, ct) == ss
    assert oqs_kem.sizes == pq.sizes


@needs_liboqs
def test_kem_vectors() -> None:
    """Every ACVP case that gives an expanded dk, in one test (one skip line when absent)."""
    file = "ML-KEM-encapDecap-FIPS203.json"
    cases = acvp(file, function="decapsulation") + acvp(file, function="encapsulation")
    for param in cases:
        name, case = param.values
        kem = CheckedKem(liboqs.LiboqsKem(name))
        assert kem.decapsulate(case["dk"], case["c"]) == case["k"], param.id


@needs_liboqs
@pytest.mark.parametrize("name", ["ML-DSA-44", "ML-DSA-65", "ML-DSA-87"])
def test_signature_interop(name: str) -> None:
    oqs_sig = CheckedSignature(liboqs.LiboqsSignature(name))
    ssl_sig = CheckedSignature(OpenSslSignature(name))
    message = b"interop " + name.encode()
    oqs_pk, oqs_sk = oqs_sig.keypair()
    ssl_pk, ssl_sk = ssl_sig.keypair()
    assert ssl_sig.verify(oqs_pk, message, oqs_sig.sign(oqs_sk, message))
    assert oqs_sig.verify(ssl_pk, message, ssl_sig.sign(ssl_sk, message))
    assert not oqs_sig.verify(ssl_pk, message + b"!", ssl_sig.sign(ssl_sk, message))
    assert oqs_sig.sizes.public_key == ssl_sig.sizes.public_key
    assert oqs_sig.sizes.signature == ssl_sig.sizes.signature


@needs_liboqs
def test_registry_uses_liboqs_for_ml_kem_512_only(registry: Registry) -> None:
    backends = {info.name: info.backend for info in registry.list_algorithms()}
    assert backends.pop("ML-KEM-512") == "liboqs"
    assert set(backends.values()) == {"openssl"}
