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

Q = 3329
_INV128 = 3303  # 128^-1 mod q, the scaling at the end of NTT^-1


def _bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


_ZETAS = [pow(17, _bitrev7(i), Q) for i in range(128)]
_GAMMAS = [pow(17, 2 * _bitrev7(i) + 1, Q) for i in range(128)]


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


def ntt(f: list[int]) -> list[int]:
    """Algorithm 9. Sums stay unreduced between layers (Python ints do not overflow)."""
    f = list(f)
    i, length = 1, 128
    while length >= 2:
        for start in range(0, 256, 2 * length):
            zeta = _ZETAS[i]
            i += 1
            for j in range(start, start + length):
                t = zeta * f[j + length] % Q
                a = f[j]
                f[j + length] = a - t
                f[j] = a + t
        length >>= 1
    return [x % Q for x in f]


def ntt_inv(f: list[int]) -> list[int]:
    """Algorithm 10, again with lazy reduction of the sums."""
    f = list(f)
    i, length = 127, 2
    while length <= 128:
        for start in range(0, 256, 2 * length):
            zeta = _ZETAS[i]
            i -= 1
            for j in range(start, start + length):
                a, b = f[j], f[j + length]
                f[j] = a + b
                f[j + length] = zeta * (b - a) % Q
        length <<= 1
    return [x * _INV128 % Q for x in f]


def mul_sum(pairs: list[tuple[list[int], list[int]]]) -> list[int]:
    """Sum of MultiplyNTTs(a, b) (Algorithms 11-12) over the pairs, reduced once."""
    c0, c1 = [0] * 128, [0] * 128
    for a, b in pairs:
        a0, a1, b0, b1 = a[0::2], a[1::2], b[0::2], b[1::2]
        for i in range(128):
            x0, x1, y0, y1 = a0[i], a1[i], b0[i], b1[i]
            c0[i] += x0 * y0 + x1 * y1 % Q * _GAMMAS[i]
            c1[i] += x0 * y1 + x1 * y0
    out = [0] * 256
    out[0::2] = [c % Q for c in c0]
    out[1::2] = [c % Q for c in c1]
    return out


def _twelve_bit_pairs(buf: bytes) -> list[int]:
    """Split each 3 bytes into two little-endian 12-bit values (shared by 5 and 7)."""
    b0, b1, b2 = buf[0::3], buf[1::3], buf[2::3]
    out = [0] * (2 * len(b0))
    out[0::2] = [x | (y & 15) << 8 for x, y in zip(b0, b1, strict=True)]
    out[1::2] = [y >> 4 | z << 4 for y, z in zip(b1, b2, strict=True)]
    return out


def sample_ntt(seed: bytes) -> list[int]:
    """Algorithm 7: rejection sampling from SHAKE-128(rho || j || i)."""
    xof = hashlib.shake_128(seed)
    n = 168 * 4  # 448 candidates; 256 are needed and about 81% are kept
    while True:
        kept = [v for v in _twelve_bit_pairs(xof.digest(n)) if v < Q]
        if len(kept) >= 256:
            return kept[:256]
        n += 168  # a longer squeeze of the same stream only appends bytes


_CBD2 = [(x & 1) + (x >> 1 & 1) - (x >> 2 & 1) - (x >> 3 & 1) for x in range(16)]
_CBD3 = [(x & 1) + (x >> 1 & 1) + (x >> 2 & 1) - (x >> 3 & 1) - (x >> 4 & 1) - (x >> 5 & 1)
         for x in range(64)]  # fmt: skip


def sample_cbd(buf: bytes, eta: int) -> list[int]:
    """Algorithm 8, by table lookup; coefficients are left in [-eta, eta]."""
    if eta == 2:
        out = [0] * 256
        out[0::2] = [_CBD2[x & 15] for x in buf]
        out[1::2] = [_CBD2[x >> 4] for x in buf]
        return out
    b0, b1, b2 = buf[0::3], buf[1::3], buf[2::3]  # eta == 3: 24 bits -> four 6-bit groups
    out = [0] * 256
    out[0::4] = [_CBD3[x & 63] for x in b0]
    out[1::4] = [_CBD3[(x >> 6 | y << 2) & 63] for x, y in zip(b0, b1, strict=True)]
    out[2::4] = [_CBD3[(y >> 4 | z << 4) & 63] for y, z in zip(b1, b2, strict=True)]
    out[3::4] = [_CBD3[z >> 2] for z in b2]
    return out


def _prf(seed: bytes, n: int, eta: int) -> bytes:
    return hashlib.shake_256(seed + bytes([n])).digest(64 * eta)


def encode12(f: list[int]) -> bytes:
    """ByteEncode_12 of one polynomial (384 bytes)."""
    a, b = f[0::2], f[1::2]
    out = bytearray(384)
    out[0::3] = bytes([x & 255 for x in a])
    out[1::3] = bytes([x >> 8 | (y & 15) << 4 for x, y in zip(a, b, strict=True)])
    out[2::3] = bytes([y >> 4 for y in b])
    return bytes(out)


def decode12(buf: bytes) -> list[int]:
    """ByteDecode_12 of one polynomial (no modulus check: callers that need it compare)."""
    return _twelve_bit_pairs(buf)


def encode_bits(f: list[int], d: int) -> bytes:
    """ByteEncode_d for d < 12, packing little-endian through one big integer."""
    acc = 0
    for x in reversed(f):
        acc = acc << d | x
    return acc.to_bytes(32 * d, "little")


def decode_bits(buf: bytes, d: int) -> list[int]:
    """ByteDecode_d for d < 12."""
    acc, mask = int.from_bytes(buf, "little"), (1 << d) - 1
    return [acc >> (d * i) & mask for i in range(256)]


def compress(f: list[int], d: int) -> list[int]:
    """Compress_d (eq. 4.7): round(2^d / q * x) mod 2^d, in integers."""
    mask, half = (1 << d) - 1, Q // 2
    return [((x << d) + half) // Q & mask for x in f]


def decompress(f: list[int], d: int) -> list[int]:
    """Decompress_d (eq. 4.8): round(q / 2^d * y)."""
    half = 1 << (d - 1)
    return [(y * Q + half) >> d for y in f]


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
