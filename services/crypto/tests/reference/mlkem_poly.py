"""Polynomial arithmetic and encodings of FIPS 203 sections 4.2-4.3, for ``mlkem``.

NTT, NTT^-1, MultiplyNTTs, SampleNTT, SamplePolyCBD, Compress/Decompress and
ByteEncode/ByteDecode, written for CPython speed (plain loops over lists, lookup
tables, lazy reduction) rather than constant time: test use only.
"""

from __future__ import annotations

import hashlib

Q = 3329
_INV128 = 3303  # 128^-1 mod q, the scaling at the end of NTT^-1


def _bitrev7(i: int) -> int:
    return int(f"{i:07b}"[::-1], 2)


_ZETAS = [pow(17, _bitrev7(i), Q) for i in range(128)]
_GAMMAS = [pow(17, 2 * _bitrev7(i) + 1, Q) for i in range(128)]


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
    """Each 3 bytes as two little-endian 12-bit values (for ByteDecode_12 and SampleNTT)."""
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
