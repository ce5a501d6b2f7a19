"""The FIPS 204 context string, through the registry's length-checked backends.

Three sources of truth, none of them ours: NIST ACVP sigVer cases that carry a
context (``data/ML-DSA-sigVer-FIPS204-context.json``); pqcrypto (PQClean-derived
code, independent of OpenSSL) signing and verifying with a context, checked in both
directions; and FIPS 204's rules themselves (an empty context is no context, 255
bytes at most). The hybrid defines no context and must refuse one, never drop it.
The liboqs backend is checked against a stand-in for its API, and against real liboqs
where that is installed.
"""

from __future__ import annotations

from types import ModuleType

import pytest
from pqcrypto import InvalidSignatureError
from pqcrypto.sign import ml_dsa_44, ml_dsa_65, ml_dsa_87

from x0_crypto.domain import CheckedSignature, InvalidInput, Registry
from x0_crypto.domain.backends import liboqs

from . import fake_oqs
from .fake_oqs import as_module as stand_in_oqs
from .vectors import Case, acvp

pytestmark = pytest.mark.unit

SIGVER = "ML-DSA-sigVer-FIPS204-context.json"
PQCRYPTO: dict[str, ModuleType] = {
    "ML-DSA-44": ml_dsa_44,
    "ML-DSA-65": ml_dsa_65,
    "ML-DSA-87": ml_dsa_87,
}
# One byte, a label, and a long one. Not 255 bytes: pqcrypto 1.0.0 refuses contexts of
# 254 and 255 bytes ("invalid context length") though FIPS 204 allows them, so the
# longest cross-checked here is 253; 255 is checked on its own below.
CONTEXTS = [b"\x00", b"x0tta6bl4/audit/v1", bytes(range(253))]
CONTEXT_IDS = ["1-byte", "label", "253-bytes"]
MESSAGE = b"move 10 units from node 3 to node 7"
# Our scheme, and pqcrypto's implementation of the same parameter set.
Pair = tuple[CheckedSignature, ModuleType]


def refusals(
    scheme: CheckedSignature, keys: tuple[bytes, bytes], signature: bytes, *, context: bytes
) -> list[InvalidInput]:
    """What signing and verifying with ``context`` raise: each must refuse it."""
    public_key, secret_key = keys
    found: list[InvalidInput] = []
    for attempt in (
        lambda: scheme.sign(secret_key, MESSAGE, context=context),
        lambda: scheme.verify(public_key, MESSAGE, signature, context=context),
    ):
        with pytest.raises(InvalidInput) as caught:
            attempt()
        found.append(caught.value)
    return found


@pytest.fixture(params=sorted(PQCRYPTO))
def cross_checked(request: pytest.FixtureRequest, registry: Registry) -> Pair:
    """Each ML-DSA parameter set: our scheme and pqcrypto's, to check one by the other."""
    return registry.signature(request.param), PQCRYPTO[request.param]


def _other(context: bytes) -> bytes:
    """A different context of the same length (or one byte, for the empty one)."""
    if not context:
        return b"\x00"
    return bytes([context[0] ^ 0x01]) + context[1:]


@pytest.mark.parametrize(("name", "case"), acvp(SIGVER))
def test_acvp_sigver_with_context(name: str, case: Case, registry: Registry) -> None:
    scheme = registry.signature(name)
    pk, message, context, signature = (
        case["pk"],
        case["message"],
        case["context"],
        case["signature"],
    )
    assert scheme.verify(pk, message, signature, context=context) is case["testPassed"]
    if case["testPassed"]:
        # The context is part of what was signed: any other one, or none, fails.
        assert not scheme.verify(pk, message, signature, context=_other(context))
        assert not scheme.verify(pk, message, signature, context=context + b"\x00")
        if context:
            assert not scheme.verify(pk, message, signature)
        else:
            assert scheme.verify(pk, message, signature)


@pytest.mark.parametrize("context", CONTEXTS, ids=CONTEXT_IDS)
def test_ours_signs_with_context_pqcrypto_verifies(context: bytes, cross_checked: Pair) -> None:
    scheme, independent = cross_checked
    public_key, secret_key = scheme.keypair()
    signature = scheme.sign(secret_key, MESSAGE, context=context)
    independent.verify(public_key, MESSAGE, signature, context=context)  # raises if invalid
    for wrong in (_other(context), None):
        with pytest.raises(InvalidSignatureError):
            independent.verify(public_key, MESSAGE, signature, context=wrong)


@pytest.mark.parametrize("context", CONTEXTS, ids=CONTEXT_IDS)
def test_pqcrypto_signs_with_context_ours_verifies(context: bytes, cross_checked: Pair) -> None:
    scheme, independent = cross_checked
    public_key, secret_key = independent.keygen()
    signature = independent.sign(secret_key, MESSAGE, context=context)
    assert scheme.verify(public_key, MESSAGE, signature, context=context)
    assert not scheme.verify(public_key, MESSAGE, signature, context=_other(context))
    assert not scheme.verify(public_key, MESSAGE, signature)
    assert not scheme.verify(public_key, MESSAGE + b"!", signature, context=context)


def test_empty_context_is_no_context(cross_checked: Pair) -> None:
    scheme, independent = cross_checked
    public_key, secret_key = scheme.keypair()
    assert scheme.verify(public_key, MESSAGE, scheme.sign(secret_key, MESSAGE), context=b"")
    signature = scheme.sign(secret_key, MESSAGE, context=b"")
    assert scheme.verify(public_key, MESSAGE, signature)
    independent.verify(public_key, MESSAGE, signature, context=None)


@pytest.mark.parametrize("name", sorted(PQCRYPTO))
def test_the_longest_context_fips_204_allows(name: str, registry: Registry) -> None:
    scheme = registry.signature(name)
    public_key, secret_key = scheme.keypair()
    context = bytes(range(255))
    signature = scheme.sign(secret_key, MESSAGE, context=context)
    assert scheme.verify(public_key, MESSAGE, signature, context=context)
    assert not scheme.verify(public_key, MESSAGE, signature, context=context[:254])


@pytest.mark.parametrize("name", [*sorted(PQCRYPTO), "Ed25519+ML-DSA-65"])
def test_a_context_over_255_bytes_is_invalid_input(name: str, registry: Registry) -> None:
    scheme = registry.signature(name)
    public_key, secret_key = scheme.keypair()
    signature = scheme.sign(secret_key, MESSAGE)
    too_long = bytes(256)
    for refusal in refusals(scheme, (public_key, secret_key), signature, context=too_long):
        assert refusal.field == "context"
        assert refusal.details["reason"] == "must be at most 255 bytes, got 256"


def test_the_hybrid_refuses_a_context_rather_than_drop_it(registry: Registry) -> None:
    scheme = registry.signature("Ed25519+ML-DSA-65")
    public_key, secret_key = scheme.keypair()
    signature = scheme.sign(secret_key, MESSAGE, context=b"")
    assert scheme.verify(public_key, MESSAGE, signature, context=b"")
    for refusal in refusals(scheme, (public_key, secret_key), signature, context=b"audit"):
        assert (refusal.field, refusal.code) == ("context", "invalid_input")


# liboqs: the backend's calls against a stand-in with liboqs-python 0.16's API (the
# library itself is absent on most machines); real liboqs below, where installed.


def _stand_in(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> None:
    monkeypatch.setattr(liboqs, "load_oqs", lambda: module)


@pytest.mark.parametrize("name", sorted(PQCRYPTO))
def test_the_liboqs_backend_passes_the_context(
    name: str, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stand_in(monkeypatch, stand_in_oqs())
    oqs, ssl = CheckedSignature(liboqs.LiboqsSignature(name)), registry.signature(name)
    context = b"x0tta6bl4/audit/v1"
    public_key, secret_key = oqs.keypair()
    signature = oqs.sign(secret_key, MESSAGE, context=context)
    assert ssl.verify(public_key, MESSAGE, signature, context=context)
    assert not ssl.verify(public_key, MESSAGE, signature)
    ssl_pk, ssl_sk = ssl.keypair()
    signature = ssl.sign(ssl_sk, MESSAGE, context=context)
    assert oqs.verify(ssl_pk, MESSAGE, signature, context=context)
    assert not oqs.verify(ssl_pk, MESSAGE, signature, context=_other(context))
    assert not oqs.verify(ssl_pk, MESSAGE, signature)


def test_the_liboqs_backend_refuses_a_context_its_scheme_cannot_take(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class WithoutContexts(fake_oqs.Signature):
        """As liboqs reports a scheme whose API has no context string."""

        def __init__(self, alg_name: str, secret_key: bytes | None = None) -> None:
            super().__init__(alg_name, secret_key)
            self.sig_with_ctx_support = False

    module = stand_in_oqs()
    module.Signature = WithoutContexts
    _stand_in(monkeypatch, module)
    scheme = CheckedSignature(liboqs.LiboqsSignature("ML-DSA-44"))
    public_key, secret_key = scheme.keypair()
    signature = scheme.sign(secret_key, MESSAGE)  # the empty context is still fine
    assert scheme.verify(public_key, MESSAGE, signature, context=b"")
    for refusal in refusals(scheme, (public_key, secret_key), signature, context=b"audit"):
        assert refusal.field == "context"


@pytest.mark.skipif(
    liboqs.find_liboqs() is None, reason="liboqs shared library not installed (see test_liboqs)"
)
@pytest.mark.parametrize("name", sorted(PQCRYPTO))
def test_real_liboqs_and_openssl_agree_on_the_context(name: str, registry: Registry) -> None:
    oqs, ssl = CheckedSignature(liboqs.LiboqsSignature(name)), registry.signature(name)
    context = bytes(range(255))
    public_key, secret_key = oqs.keypair()
    signature = oqs.sign(secret_key, MESSAGE, context=context)
    assert ssl.verify(public_key, MESSAGE, signature, context=context)
    assert not ssl.verify(public_key, MESSAGE, signature)
    ssl_pk, ssl_sk = ssl.keypair()
    assert oqs.verify(ssl_pk, MESSAGE, ssl.sign(ssl_sk, MESSAGE, context=context), context=context)
