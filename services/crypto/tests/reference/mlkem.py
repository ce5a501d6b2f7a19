"""Test-only, pure-Python ML-KEM (FIPS 203, August 2024): a second opinion.

pyca/cryptography has no derandomised encapsulation and exposes only the 64-byte seed,
and pqcrypto has no derandomised key generation, so the known-answer tests need an
implementation whose randomness they control. This one follows the standard's
algorithms and names (K-PKE.KeyGen/Encrypt/Decrypt, NTT, SampleNTT, SamplePolyCBD,
Compress, ByteEncode) and must itself pass the NIST ACVP vectors before the tests trust it.

It is written for speed in CPython (the C2SP accumulated test runs it tens of
thousands of times), not for secrecy: nothing here is constant time. Never use it
outside tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache

from .mlkem_poly import (
    Q,
    compress,
    decode12,
    decode_bits,
    decompress,
    encode12,
    encode_bits,
    mul_sum,
    ntt,
    ntt_inv,
    sample_cbd,
    sample_ntt,
)

__all__ = ["PARAMS", "Params", "Q", "decaps", "decode12", "encaps", "encode12", "keygen"]


@dataclass(frozen=True, slots=True)
class Params:
    """One ML-KEM parameter set (FIPS 203 table 2)."""

    name: str
    k: int
    eta1: int
    eta2: int
    du: int
    dv: int

    @property
    def ek_len(self) -> int:
        return 384 * self.k + 32

    @property
    def dk_len(self) -> int:
        return 768 * self.k + 96

    @property
    def ct_len(self) -> int:
        return 32 * (self.du * self.k + self.dv)


PARAMS = {
    p.name: p
    for p in (
        Params("ML-KEM-512", 2, 3, 2, 10, 4),
        Params("ML-KEM-768", 3, 2, 2, 10, 4),
        Params("ML-KEM-1024", 4, 2, 2, 11, 5),
    )
}


def _prf(seed: bytes, n: int, eta: int) -> bytes:
    return hashlib.shake_256(seed + bytes([n])).digest(64 * eta)


@lru_cache(maxsize=4)
def matrix(rho: bytes, k: int) -> tuple[tuple[list[int], ...], ...]:
    """A_hat with A_hat[i][j] = SampleNTT(rho || j || i); cached because keygen,
    encaps and decaps of one key all rebuild it."""
    return tuple(tuple(sample_ntt(rho + bytes([j, i])) for j in range(k)) for i in range(k))


def secret_ntt(p: Params, d: bytes) -> list[list[int]]:
    """s_hat of K-PKE.KeyGen: the part of the key a seed-only backend never reveals."""
    sigma = hashlib.sha3_512(d + bytes([p.k])).digest()[32:]
    return [ntt(sample_cbd(_prf(sigma, i, p.eta1), p.eta1)) for i in range(p.k)]


def keygen(p: Params, d: bytes, z: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.KeyGen_internal(d, z) -> (ek, dk) (Algorithms 13 and 16)."""
    rho, sigma = (g := hashlib.sha3_512(d + bytes([p.k])).digest())[:32], g[32:]
    a = matrix(rho, p.k)
    s = [ntt(sample_cbd(_prf(sigma, i, p.eta1), p.eta1)) for i in range(p.k)]
    e = [ntt(sample_cbd(_prf(sigma, p.k + i, p.eta1), p.eta1)) for i in range(p.k)]
    t = [
        [(x + y) % Q for x, y in zip(mul_sum(list(zip(a[i], s, strict=True))), e[i], strict=True)]
        for i in range(p.k)
    ]
    ek = b"".join(encode12(ti) for ti in t) + rho
    return ek, expand_dk(p, s, ek, z)


def expand_dk(p: Params, s_hat: list[list[int]], ek: bytes, z: bytes) -> bytes:
    """dk = dk_PKE || ek || H(ek) || z (Algorithm 16, line 3)."""
    return b"".join(encode12(si) for si in s_hat) + ek + hashlib.sha3_256(ek).digest() + z


def _encrypt(p: Params, ek: bytes, m: bytes, r: bytes) -> bytes:
    """K-PKE.Encrypt (Algorithm 14)."""
    k = p.k
    t = [decode12(ek[384 * i : 384 * (i + 1)]) for i in range(k)]
    a = matrix(ek[384 * k :], k)
    y = [ntt(sample_cbd(_prf(r, i, p.eta1), p.eta1)) for i in range(k)]
    e1 = [sample_cbd(_prf(r, k + i, p.eta2), p.eta2) for i in range(k)]
    e2 = sample_cbd(_prf(r, 2 * k, p.eta2), p.eta2)
    c1 = b""
    for i in range(k):
        u = ntt_inv(mul_sum([(a[j][i], y[j]) for j in range(k)]))  # A_hat transposed
        u = [(x + e) % Q for x, e in zip(u, e1[i], strict=True)]
        c1 += encode_bits(compress(u, p.du), p.du)
    mu = decompress(decode_bits(m, 1), 1)
    v = ntt_inv(mul_sum(list(zip(t, y, strict=True))))
    v = [(x + e + w) % Q for x, e, w in zip(v, e2, mu, strict=True)]
    return c1 + encode_bits(compress(v, p.dv), p.dv)


def _decrypt(p: Params, dk_pke: bytes, c: bytes) -> bytes:
    """K-PKE.Decrypt (Algorithm 15)."""
    k, step = p.k, 32 * p.du
    u = [ntt(decompress(decode_bits(c[step * i : step * (i + 1)], p.du), p.du)) for i in range(k)]
    v = decompress(decode_bits(c[step * k :], p.dv), p.dv)
    s = [decode12(dk_pke[384 * i : 384 * (i + 1)]) for i in range(k)]
    w = ntt_inv(mul_sum(list(zip(s, u, strict=True))))
    return encode_bits(compress([(x - y) % Q for x, y in zip(v, w, strict=True)], 1), 1)


def encaps(p: Params, ek: bytes, m: bytes) -> tuple[bytes, bytes]:
    """ML-KEM.Encaps_internal(ek, m) -> (K, c) (Algorithm 17)."""
    g = hashlib.sha3_512(m + hashlib.sha3_256(ek).digest()).digest()
    return g[:32], _encrypt(p, ek, m, g[32:])


def decaps(p: Params, dk: bytes, c: bytes) -> bytes:
    """ML-KEM.Decaps_internal(dk, c) -> K, with implicit rejection (Algorithm 18)."""
    k = p.k
    dk_pke, ek, h, z = dk[: 384 * k], dk[384 * k : 768 * k + 32], dk[-64:-32], dk[-32:]
    m = _decrypt(p, dk_pke, c)
    g = hashlib.sha3_512(m + h).digest()
    if _encrypt(p, ek, m, g[32:]) == c:
        return g[:32]
    return hashlib.shake_256(z + c).digest(32)


def ek_modulus_ok(p: Params, ek: bytes) -> bool:
    """The encapsulation key check of section 7.2: every coefficient below q."""
    return all(v < Q for v in decode12(ek[: 384 * p.k]))


def dk_hash_ok(p: Params, dk: bytes) -> bool:
    """The decapsulation key hash check of section 7.3."""
    return hashlib.sha3_256(dk[384 * p.k : 768 * p.k + 32]).digest() == dk[-64:-32]
