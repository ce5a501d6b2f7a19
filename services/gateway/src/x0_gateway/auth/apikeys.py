"""API keys: what one looks like, how it is made and how it is stored.

A key is ``x0_live_`` (or ``x0_test_`` for the development key ``make up`` creates)
followed by 43 base62 characters of 32 random bytes (256 bits, :mod:`secrets`) and a
6-character base62 CRC32 of them, as GitHub's tokens carry one: a secret scanner
matches the prefix and checks the checksum without asking us, and a mistyped key is
refused without a database round trip. The key is shown once, at creation; the
gateway stores only ``HMAC-SHA-256(pepper, key)`` (:func:`digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import zlib
from typing import Final

LIVE_PREFIX: Final = "x0_live_"
# The development key only; a production gateway refuses keys with this prefix.
TEST_PREFIX: Final = "x0_test_"
PREFIXES: Final = (LIVE_PREFIX, TEST_PREFIX)
RANDOM_BYTES: Final = 32
_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RANDOM_CHARS: Final = 43  # 62**43 > 2**256
_CHECK_CHARS: Final = 6  # 62**6 > 2**32
_SHAPE: Final = re.compile(
    rf"(?:{LIVE_PREFIX}|{TEST_PREFIX})[0-9A-Za-z]{{{_RANDOM_CHARS + _CHECK_CHARS}}}"
)
# Shown in listings: the prefix and the first 4 random characters.
HINT_CHARS: Final = len(LIVE_PREFIX) + 4


def _base62(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    assert value == 0, "the value does not fit the width"
    return "".join(reversed(chars))


def _checksum(random_part: str) -> str:
    return _base62(zlib.crc32(random_part.encode()), _CHECK_CHARS)


def new_key(*, development: bool = False) -> str:
    """A new key: prefix, 256 random bits in base62, CRC32 in base62."""
    random_part = _base62(int.from_bytes(secrets.token_bytes(RANDOM_BYTES), "big"), _RANDOM_CHARS)
    prefix = TEST_PREFIX if development else LIVE_PREFIX
    return f"{prefix}{random_part}{_checksum(random_part)}"


def is_well_formed(token: str) -> bool:
    """True when ``token`` has a key's prefix, length, alphabet and a matching checksum."""
    if not _SHAPE.fullmatch(token):
        return False
    body = token[len(LIVE_PREFIX) :]
    random_part, check = body[:_RANDOM_CHARS], body[_RANDOM_CHARS:]
    return hmac.compare_digest(_checksum(random_part), check)


def looks_like_key(token: str) -> bool:
    """True when ``token`` claims to be an API key (rather than a JWT) by its prefix."""
    return token.startswith(PREFIXES)


def is_development_key(token: str) -> bool:
    """True for the development key's prefix."""
    return token.startswith(TEST_PREFIX)


def digest(pepper: bytes, key: str) -> bytes:
    """What is stored and looked up: ``HMAC-SHA-256(pepper, key)``, 32 bytes."""
    return hmac.new(pepper, key.encode(), hashlib.sha256).digest()


def hint(key: str) -> str:
    """The part of a key that may be shown again: its prefix and 4 characters."""
    return key[:HINT_CHARS]
