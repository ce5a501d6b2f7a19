"""Stateless operations: key pairs, encapsulate/decapsulate, sign/verify, and batches.

Each batch item succeeds or fails on its own; output keeps input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from x0_common.contract import Crypto, Operation
from x0_common.errors import X0Error
from x0_common.events.crypto import (
    AlgorithmDescription,
    AlgorithmsResult,
    DecapsulateRequest,
    DecapsulateResult,
    EncapsulateRequest,
    EncapsulateResult,
    KemKeypairRequest,
    KeypairResult,
    SignatureKeypairRequest,
    SignRequest,
    SignResult,
    VerifyRequest,
    VerifyResult,
)
from x0_common.events.envelope import ErrorBody
from x0_common.kafka import RequestContext, Responder
from x0_common.kafka.responder import Handler
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import KemSizes
from x0_crypto.domain.backends.base import Backend

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

    def keypair(
        request: KemKeypairRequest | SignatureKeypairRequest,
        operation: str,
        lookup: Callable[[str], Backend],
    ) -> KeypairResult:
        with metrics.operation(request.algorithm, operation):
            public_key, secret_key = lookup(request.algorithm).keypair()
        return KeypairResult(
            algorithm=request.algorithm, public_key=public_key, secret_key=secret_key
        )

    def kem_keypair(request: KemKeypairRequest) -> KeypairResult:
        return keypair(request, "kem_keypair", algorithms.kem)

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
        return keypair(request, "signature_keypair", algorithms.signature)

    def sign(request: SignRequest) -> SignResult:
        with metrics.operation(request.algorithm, "sign"):
            signature = algorithms.signature(request.algorithm).sign(
                request.secret_key, request.message, context=request.context
            )
        return SignResult(signature=signature)

    def verify(request: VerifyRequest) -> VerifyResult:
        with metrics.operation(request.algorithm, "verify"):
            valid = algorithms.signature(request.algorithm).verify(
                request.public_key, request.message, request.signature, context=request.context
            )
        return VerifyResult(valid=valid)

    # One operation, one function; a batch runs the same function per item.
    singles: dict[Operation, Callable[[Any], BaseModel]] = {
        Crypto.ALGORITHMS: lambda _: describe(),
        Crypto.KEM_KEYPAIR: kem_keypair,
        Crypto.ENCAPSULATE: encapsulate,
        Crypto.DECAPSULATE: decapsulate,
        Crypto.SIGNATURE_KEYPAIR: signature_keypair,
        Crypto.SIGN: sign,
        Crypto.VERIFY: verify,
    }
    batches: dict[Operation, Callable[[Any], BaseModel]] = {
        Crypto.KEM_KEYPAIR_BATCH: kem_keypair,
        Crypto.ENCAPSULATE_BATCH: encapsulate,
        Crypto.DECAPSULATE_BATCH: decapsulate,
        Crypto.SIGNATURE_KEYPAIR_BATCH: signature_keypair,
        Crypto.SIGN_BATCH: sign,
        Crypto.VERIFY_BATCH: verify,
    }
    for operation, function in singles.items():
        responder.operation(operation)(_single(function))
    for operation, function in batches.items():
        responder.operation(operation)(_batch(operation, function))


def _single(function: Callable[[Any], BaseModel]) -> Handler:
    async def handle(request: Any, _: RequestContext) -> BaseModel:
        return function(request)

    return handle


def _batch(operation: Operation, function: Callable[[Any], BaseModel]) -> Handler:
    result_model = operation.result
    assert result_model is not None

    async def handle(request: Any, _: RequestContext) -> BaseModel:
        return result_model.model_validate({"items": _each(request.items, function)})

    return handle
