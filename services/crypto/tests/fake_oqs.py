"""A stand-in for the ``oqs`` module, for machines without the liboqs shared library.

It copies liboqs-python 0.16's call surface exactly (class and method names, argument
order, ``ctypes.create_string_buffer`` padding, ``RuntimeError`` on failure) and runs
pqcrypto underneath, whose keys have liboqs's expanded formats. It proves that the
liboqs backend calls that API correctly; it proves nothing about liboqs itself, which
``test_liboqs.py``'s interop tests do where the library is installed.
"""

from __future__ import annotations

import ctypes
from types import ModuleType, TracebackType

from pqcrypto import InvalidSignatureError
from pqcrypto.kem import ml_kem_512, ml_kem_768, ml_kem_1024
from pqcrypto.sign import ml_dsa_44, ml_dsa_65, ml_dsa_87

_KEMS: dict[str, ModuleType] = {
    "ML-KEM-512": ml_kem_512,
    "ML-KEM-768": ml_kem_768,
    "ML-KEM-1024": ml_kem_1024,
}
_SIGS: dict[str, ModuleType] = {
    "ML-DSA-44": ml_dsa_44,
    "ML-DSA-65": ml_dsa_65,
    "ML-DSA-87": ml_dsa_87,
}


class MechanismNotSupportedError(Exception):
    """As ``oqs.MechanismNotSupportedError``."""


class MechanismNotEnabledError(MechanismNotSupportedError):
    """As ``oqs.MechanismNotEnabledError``."""


def _buffer(data: bytes, size: int) -> bytes:
    # liboqs-python passes every input through create_string_buffer(data, size): a short
    # input is zero-padded, not rejected; the domain's length checks must catch it first.
    return bytes(ctypes.create_string_buffer(data, size))


class _Mechanism:
    """What both mechanisms share: the pqcrypto module behind ``alg_name`` (from
    ``modules``), its key lengths, and the secret key, wiped on exit."""

    secret_key: bytes

    def __init__(
        self, alg_name: str, secret_key: bytes | None, modules: dict[str, ModuleType]
    ) -> None:
        if alg_name not in modules:
            raise MechanismNotSupportedError(alg_name)
        self._mod = modules[alg_name]
        self.length_public_key = self._mod.PUBLIC_KEY_SIZE
        self.length_secret_key = self._mod.SECRET_KEY_SIZE
        if secret_key:
            self.secret_key = _buffer(secret_key, self.length_secret_key)

    def generate_keypair(self) -> bytes:
        public_key, self.secret_key = self._mod.keygen()
        return bytes(public_key)

    def __enter__(self) -> _Mechanism:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.secret_key = b""

    def export_secret_key(self) -> bytes:
        return bytes(self.secret_key)


class KeyEncapsulation(_Mechanism):
    """As ``oqs.KeyEncapsulation``."""

    def __init__(self, alg_name: str, secret_key: bytes | None = None) -> None:
        super().__init__(alg_name, secret_key, _KEMS)
        self.length_ciphertext = self._mod.CIPHERTEXT_SIZE
        self.length_shared_secret = self._mod.SHARED_SECRET_SIZE

    def encap_secret(self, public_key: bytes) -> tuple[bytes, bytes]:
        try:
            ct, ss = self._mod.encaps(_buffer(public_key, self.length_public_key))
        except ValueError:
            raise RuntimeError("Can not encapsulate secret") from None
        return bytes(ct), bytes(ss)

    def decap_secret(self, ciphertext: bytes) -> bytes:
        try:
            ss = self._mod.decaps(self.secret_key, _buffer(ciphertext, self.length_ciphertext))
        except ValueError:
            raise RuntimeError("Can not decapsulate secret") from None
        return bytes(ss)


class Signature(_Mechanism):
    """As ``oqs.Signature``."""

    def __init__(self, alg_name: str, secret_key: bytes | None = None) -> None:
        super().__init__(alg_name, secret_key, _SIGS)
        self.length_signature = self._mod.SIGNATURE_SIZE
        # liboqs sets this per scheme; every ML-DSA has it (FIPS 204 context strings).
        self.sig_with_ctx_support = True

    def sign(self, message: bytes) -> bytes:
        return bytes(self._mod.sign(self.secret_key, message))

    def verify(self, message: bytes, signature: bytes, public_key: bytes) -> bool:
        try:
            self._mod.verify(_buffer(public_key, self.length_public_key), message, signature)
        except (InvalidSignatureError, ValueError):
            return False
        return True

    def sign_with_ctx_str(self, message: bytes, context: bytes) -> bytes:
        try:
            return bytes(self._mod.sign(self.secret_key, message, context=context))
        except ValueError:
            raise RuntimeError("Can not sign message with context string") from None

    def verify_with_ctx_str(
        self, message: bytes, signature: bytes, context: bytes, public_key: bytes
    ) -> bool:
        try:
            self._mod.verify(
                _buffer(public_key, self.length_public_key), message, signature, context=context
            )
        except (InvalidSignatureError, ValueError):
            return False
        return True


def as_module() -> ModuleType:
    """This stand-in as a module object, the shape ``load_oqs()`` returns."""
    module = ModuleType("oqs")
    for cls in (KeyEncapsulation, Signature, MechanismNotSupportedError, MechanismNotEnabledError):
        setattr(module, cls.__name__, cls)
    return module
