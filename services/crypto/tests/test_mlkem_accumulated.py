"""C2SP/CCTV "accumulated" ML-KEM test: 10,000 chained cases per parameter set.

Procedure (CCTV ML-KEM README, FIPS 203 final): one SHAKE-128 stream over empty input
is the only randomness. For each case draw, in order, ``d`` (32 bytes), ``z`` (32),
``m`` (32) and a random ciphertext of the set's ciphertext length; run
``KeyGen_internal(d, z)``, ``Encaps_internal(ek, m)``, ``Decaps(dk, c)`` (must equal
``K``) and ``Decaps(dk, random_ct)`` (implicit rejection). Write ``ek``, ``dk``, ``c``,
``K`` and the rejection key to a second SHAKE-128; its first 32 bytes after all cases
must equal the published digest.

Who computes what, so the real backends are exercised where their API reaches:

- ML-KEM-768/1024: ``ek`` from the OpenSSL backend's seed key ``d || z``; both
  decapsulations by the OpenSSL backend (through the registry, seed as secret key);
  the expanded ``dk``, which pyca never reveals, is assembled from the reference's
  ``s_hat`` around OpenSSL's ``ek``; the derandomised encapsulation is the reference's.
- ML-KEM-512: key generation and encapsulation by the reference (no backend has them
  derandomised); both decapsulations by the registry's ML-KEM-512 backend with the
  expanded ``dk``.

Measured on the 2-core development machine: about 18 s (512), 22 s (768), 34 s (1024).
"""

from __future__ import annotations

import hashlib

import pytest

from x0_crypto.domain import Registry
from x0_crypto.domain.backends.openssl import OpenSslKem

from .reference import mlkem as ref

pytestmark = pytest.mark.unit

ITERATIONS = 10_000
EXPECTED = {
    "ML-KEM-512": "705dcffc87f4e67e35a09dcaa31772e86f3341bd3ccf1e78a5fef99ae6a35a13",
    "ML-KEM-768": "f959d18d3d1180121433bf0e05f11e7908cf9d03edc150b2b07cb90bef5bc1c1",
    "ML-KEM-1024": "e3bf82b013307b2e9d47dde791ff6dfc82e694e6382404abdb948b908b75bad5",
}


class Shake128Stream:
    """Sequential reads from SHAKE-128(empty); hashlib can only squeeze from the start,
    so the squeezed prefix is kept and doubled when a read runs past it."""

    def __init__(self) -> None:
        self._xof = hashlib.shake_128()
        self._buffer = b""
        self._position = 0

    def read(self, n: int) -> bytes:
        end = self._position + n
        if end > len(self._buffer):
            self._buffer = self._xof.digest(max(2 * len(self._buffer), end, 1 << 16))
        out = self._buffer[self._position : end]
        self._position = end
        return out


def test_stream_prefix() -> None:
    """The CCTV README gives the stream's first bytes."""
    assert Shake128Stream().read(16).hex() == "7f9c2ba4e88f827d616045507605853e"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", list(EXPECTED))
def test_accumulated(name: str, registry: Registry) -> None:
    params = ref.PARAMS[name]
    backend = registry.kem(name)
    seeded = OpenSslKem(name) if backend.backend == "openssl" else None
    rng, accumulator = Shake128Stream(), hashlib.shake_128()
    for _ in range(ITERATIONS):
        d, z, m = rng.read(32), rng.read(32), rng.read(32)
        random_ct = rng.read(params.ct_len)
        if seeded is not None:
            secret_key = d + z
            ek = seeded.public_key_from_seed(secret_key)
            dk = ref.expand_dk(params, ref.secret_ntt(params, d), ek, z)
        else:
            ek, dk = ref.keygen(params, d, z)
            secret_key = dk
        shared, ciphertext = ref.encaps(params, ek, m)
        assert backend.decapsulate(secret_key, ciphertext) == shared
        rejected = backend.decapsulate(secret_key, random_ct)
        for part in (ek, dk, ciphertext, shared, rejected):
            accumulator.update(part)
    assert accumulator.digest(32).hex() == EXPECTED[name]
