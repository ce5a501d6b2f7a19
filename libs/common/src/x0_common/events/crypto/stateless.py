"""Stateless operations: the caller holds the keys (KEM, signatures, and batches)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from x0_common.events.binary import Base64Bytes
from x0_common.events.crypto.signing import SignatureContext
from x0_common.events.envelope import ErrorBody
from x0_common.events.names import AlgorithmKind, KemAlgorithm, SignatureAlgorithm

# Items per batch request: enough to amortise a Kafka round trip many times over,
# small enough that one batch of the slowest operation stays well under a second.
MAX_BATCH = 256


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AlgorithmsRequest(_Message):
    """List what the service offers."""


class AlgorithmDescription(_Message):
    """One algorithm, the library serving it, and its sizes in bytes."""

    name: str
    kind: AlgorithmKind
    backend: str
    public_key_bytes: int
    secret_key_bytes: int
    ciphertext_bytes: int | None = None
    shared_secret_bytes: int | None = None
    signature_bytes: int | None = None


class AlgorithmsResult(_Message):
    """Every algorithm offered."""

    algorithms: list[AlgorithmDescription]


class KemKeypairRequest(_Message):
    """Generate a KEM key pair."""

    algorithm: KemAlgorithm = Field(examples=["ML-KEM-768"])


class SignatureKeypairRequest(_Message):
    """Generate a signature key pair."""

    algorithm: SignatureAlgorithm = Field(examples=["ML-DSA-65"])


class KeypairResult(_Message):
    """A fresh key pair; the secret key is the caller's to keep."""

    algorithm: str
    public_key: Base64Bytes
    secret_key: Base64Bytes


class EncapsulateRequest(_Message):
    """Encapsulate a fresh shared secret to ``public_key``."""

    algorithm: KemAlgorithm = Field(examples=["ML-KEM-768"])
    public_key: Base64Bytes


class EncapsulateResult(_Message):
    """The ciphertext to send, and the shared secret it carries."""

    ciphertext: Base64Bytes
    shared_secret: Base64Bytes


class DecapsulateRequest(_Message):
    """Recover the shared secret from ``ciphertext`` with ``secret_key``."""

    algorithm: KemAlgorithm = Field(examples=["ML-KEM-768"])
    secret_key: Base64Bytes
    ciphertext: Base64Bytes


class DecapsulateResult(_Message):
    """The shared secret (implicit rejection: a tampered ciphertext gives another one)."""

    shared_secret: Base64Bytes


class SignRequest(_Message):
    """Sign ``message`` with ``secret_key``, under ``context`` (FIPS 204, default empty)."""

    algorithm: SignatureAlgorithm = Field(examples=["ML-DSA-65"])
    secret_key: Base64Bytes
    message: Base64Bytes
    context: SignatureContext = b""


class SignResult(_Message):
    """The signature."""

    signature: Base64Bytes


class VerifyRequest(_Message):
    """Check ``signature`` over ``message`` under ``public_key`` and ``context``."""

    algorithm: SignatureAlgorithm = Field(examples=["ML-DSA-65"])
    public_key: Base64Bytes
    message: Base64Bytes
    signature: Base64Bytes
    context: SignatureContext = b""


class VerifyResult(_Message):
    """Whether the signature is valid (a wrong signature is ``false``, not an error)."""

    valid: bool


class _BatchItem(_Message):
    """One item's outcome: exactly one of ``result`` or ``error``."""

    error: ErrorBody | None = None


class KemKeypairBatchRequest(_Message):
    """Up to ``MAX_BATCH`` KEM key pairs."""

    items: list[KemKeypairRequest] = Field(min_length=1, max_length=MAX_BATCH)


class SignatureKeypairBatchRequest(_Message):
    """Up to ``MAX_BATCH`` signature key pairs."""

    items: list[SignatureKeypairRequest] = Field(min_length=1, max_length=MAX_BATCH)


class KeypairBatchItem(_BatchItem):
    """A key pair or its error."""

    result: KeypairResult | None = None


class KeypairBatchResult(_Message):
    """Outcomes in request order."""

    items: list[KeypairBatchItem]


class EncapsulateBatchRequest(_Message):
    """Up to ``MAX_BATCH`` encapsulations."""

    items: list[EncapsulateRequest] = Field(min_length=1, max_length=MAX_BATCH)


class EncapsulateBatchItem(_BatchItem):
    """An encapsulation or its error."""

    result: EncapsulateResult | None = None


class EncapsulateBatchResult(_Message):
    """Outcomes in request order."""

    items: list[EncapsulateBatchItem]


class DecapsulateBatchRequest(_Message):
    """Up to ``MAX_BATCH`` decapsulations."""

    items: list[DecapsulateRequest] = Field(min_length=1, max_length=MAX_BATCH)


class DecapsulateBatchItem(_BatchItem):
    """A decapsulation or its error."""

    result: DecapsulateResult | None = None


class DecapsulateBatchResult(_Message):
    """Outcomes in request order."""

    items: list[DecapsulateBatchItem]


class SignBatchRequest(_Message):
    """Up to ``MAX_BATCH`` signatures."""

    items: list[SignRequest] = Field(min_length=1, max_length=MAX_BATCH)


class SignBatchItem(_BatchItem):
    """A signature or its error."""

    result: SignResult | None = None


class SignBatchResult(_Message):
    """Outcomes in request order."""

    items: list[SignBatchItem]


class VerifyBatchRequest(_Message):
    """Up to ``MAX_BATCH`` verifications."""

    items: list[VerifyRequest] = Field(min_length=1, max_length=MAX_BATCH)


class VerifyBatchItem(_BatchItem):
    """A verification or its error."""

    result: VerifyResult | None = None


class VerifyBatchResult(_Message):
    """Outcomes in request order."""

    items: list[VerifyBatchItem]
