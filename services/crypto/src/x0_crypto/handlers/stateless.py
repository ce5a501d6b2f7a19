"""Stateless operations: key pairs, encapsulate/decapsulate, sign/verify, and batches.

Each batch item succeeds or fails on its own; output keeps input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel

from x0_common.errors import X0Error
from x0_common.events.crypto import (
    AlgorithmDescription,
    AlgorithmsRequest,
    AlgorithmsResult,
    CryptoTypes,
    DecapsulateBatchRequest,
    DecapsulateBatchResult,
    DecapsulateRequest,
    DecapsulateResult,
    EncapsulateBatchRequest,
    EncapsulateBatchResult,
    EncapsulateRequest,
    EncapsulateResult,
    KemKeypairBatchRequest,
    KemKeypairRequest,
    KeypairBatchResult,
    KeypairResult,
    SignatureKeypairBatchRequest,
    SignatureKeypairRequest,
    SignBatchRequest,
    SignBatchResult,
    SignRequest,
    SignResult,
    VerifyBatchRequest,
    VerifyBatchResult,
    VerifyRequest,
    VerifyResult,
)
from x0_common.events.envelope import ErrorBody
from x0_common.kafka import RequestContext, Responder
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import KemSizes

RequestT = TypeVar("RequestT", bound=BaseModel)
ResultT = TypeVar("ResultT", bound=BaseModel)


def _each(
    items: Sequence[RequestT], operation: Callable[[RequestT], ResultT]
) -> list[dict[str, object]]:
    """Run ``operation`` per item; an item's typed error stays with that item."""
    outcomes: list[dict[str, object]] = []
    for item in items:
        try:
            outcomes.append({"result": operation(item)})
        except X0Error as error:
            outcomes.append(
                {"error": ErrorBody(code=error.code, message=error.message, details=error.details)}
            )
    return outcomes


def register(responder: Responder, deps: CryptoDeps) -> None:
    """Register the stateless operations."""
    algorithms, metrics = deps.algorithms, deps.metrics

    def describe() -> AlgorithmsResult:
        rows = []
        for info in algorithms.list_algorithms():
            sizes = info.sizes
            extra = (
                {"ciphertext_bytes": sizes.ciphertext, "shared_secret_bytes": sizes.shared_secret}
                if isinstance(sizes, KemSizes)
                else {"signature_bytes": sizes.signature}
            )
            rows.append(
                AlgorithmDescription(
                    name=info.name,
                    kind=info.kind.value,
                    backend=info.backend,
                    public_key_bytes=sizes.public_key,
                    secret_key_bytes=sizes.secret_key,
                    **extra,
                )
            )
        return AlgorithmsResult(algorithms=rows)

    def kem_keypair(request: KemKeypairRequest) -> KeypairResult:
        with metrics.operation(request.algorithm, "kem_keypair"):
            public_key, secret_key = algorithms.kem(request.algorithm).keypair()
        return KeypairResult(
            algorithm=request.algorithm, public_key=public_key, secret_key=secret_key
        )

    def encapsulate(request: EncapsulateRequest) -> EncapsulateResult:
        with metrics.operation(request.algorithm, "encapsulate"):
            ciphertext, shared = algorithms.kem(request.algorithm).encapsulate(request.public_key)
        return EncapsulateResult(ciphertext=ciphertext, shared_secret=shared)

    def decapsulate(request: DecapsulateRequest) -> DecapsulateResult:
        with metrics.operation(request.algorithm, "decapsulate"):
            shared = algorithms.kem(request.algorithm).decapsulate(
                request.secret_key, request.ciphertext
            )
        return DecapsulateResult(shared_secret=shared)

    def signature_keypair(request: SignatureKeypairRequest) -> KeypairResult:
        with metrics.operation(request.algorithm, "signature_keypair"):
            public_key, secret_key = algorithms.signature(request.algorithm).keypair()
        return KeypairResult(
            algorithm=request.algorithm, public_key=public_key, secret_key=secret_key
        )

    def sign(request: SignRequest) -> SignResult:
        with metrics.operation(request.algorithm, "sign"):
            signature = algorithms.signature(request.algorithm).sign(
                request.secret_key, request.message
            )
        return SignResult(signature=signature)

    def verify(request: VerifyRequest) -> VerifyResult:
        with metrics.operation(request.algorithm, "verify"):
            valid = algorithms.signature(request.algorithm).verify(
                request.public_key, request.message, request.signature
            )
        return VerifyResult(valid=valid)

    @responder.operation(CryptoTypes.ALGORITHMS)
    async def on_algorithms(_: AlgorithmsRequest, __: RequestContext) -> AlgorithmsResult:
        return describe()

    @responder.operation(CryptoTypes.KEM_KEYPAIR)
    async def on_kem_keypair(request: KemKeypairRequest, _: RequestContext) -> KeypairResult:
        return kem_keypair(request)

    @responder.operation(CryptoTypes.KEM_KEYPAIR_BATCH)
    async def on_kem_keypair_batch(
        request: KemKeypairBatchRequest, _: RequestContext
    ) -> KeypairBatchResult:
        return KeypairBatchResult.model_validate({"items": _each(request.items, kem_keypair)})

    @responder.operation(CryptoTypes.ENCAPSULATE)
    async def on_encapsulate(request: EncapsulateRequest, _: RequestContext) -> EncapsulateResult:
        return encapsulate(request)

    @responder.operation(CryptoTypes.ENCAPSULATE_BATCH)
    async def on_encapsulate_batch(
        request: EncapsulateBatchRequest, _: RequestContext
    ) -> EncapsulateBatchResult:
        return EncapsulateBatchResult.model_validate({"items": _each(request.items, encapsulate)})

    @responder.operation(CryptoTypes.DECAPSULATE)
    async def on_decapsulate(request: DecapsulateRequest, _: RequestContext) -> DecapsulateResult:
        return decapsulate(request)

    @responder.operation(CryptoTypes.DECAPSULATE_BATCH)
    async def on_decapsulate_batch(
        request: DecapsulateBatchRequest, _: RequestContext
    ) -> DecapsulateBatchResult:
        return DecapsulateBatchResult.model_validate({"items": _each(request.items, decapsulate)})

    @responder.operation(CryptoTypes.SIGNATURE_KEYPAIR)
    async def on_signature_keypair(
        request: SignatureKeypairRequest, _: RequestContext
    ) -> KeypairResult:
        return signature_keypair(request)

    @responder.operation(CryptoTypes.SIGNATURE_KEYPAIR_BATCH)
    async def on_signature_keypair_batch(
        request: SignatureKeypairBatchRequest, _: RequestContext
    ) -> KeypairBatchResult:
        return KeypairBatchResult.model_validate({"items": _each(request.items, signature_keypair)})

    @responder.operation(CryptoTypes.SIGN)
    async def on_sign(request: SignRequest, _: RequestContext) -> SignResult:
        return sign(request)

    @responder.operation(CryptoTypes.SIGN_BATCH)
    async def on_sign_batch(request: SignBatchRequest, _: RequestContext) -> SignBatchResult:
        return SignBatchResult.model_validate({"items": _each(request.items, sign)})

    @responder.operation(CryptoTypes.VERIFY)
    async def on_verify(request: VerifyRequest, _: RequestContext) -> VerifyResult:
        return verify(request)

    @responder.operation(CryptoTypes.VERIFY_BATCH)
    async def on_verify_batch(request: VerifyBatchRequest, _: RequestContext) -> VerifyBatchResult:
        return VerifyBatchResult.model_validate({"items": _each(request.items, verify)})
