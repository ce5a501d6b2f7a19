"""The ``context`` field end to end through the handlers: JSON payloads in, JSON out.

Managed keys run on the real PostgreSQL; the stateless batches need nothing outside
the process. What a caller would notice: a signature made under one context verifies
under that context only, an absent context is the empty one, and a context the
algorithm cannot take is that item's typed error, not a silently ignored field.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pqcrypto.sign import ml_dsa_65
from pydantic import ValidationError

from x0_common.contract import Crypto
from x0_common.errors import X0Error
from x0_common.kafka import RequestContext
from x0_common.metrics import new_registry
from x0_common.resources import Stores
from x0_common.testing.handlers import CapturingResponder
from x0_common.testing.principals import request_context
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import Registry
from x0_crypto.handlers import stateless
from x0_crypto.metrics import CryptoMetrics
from x0_crypto.settings import CryptoSettings

from .keys_support import KeysUnderTest, b64, unb64

MESSAGE = b"rotate the mesh key at 02:00"
CONTEXT = b"x0tta6bl4/audit/v1"


# Managed keys.


@pytest.fixture
async def name(pg_pool: asyncpg.Pool) -> AsyncIterator[str]:
    name = f"t-ctx-{uuid.uuid4().hex[:12]}"
    yield name
    await pg_pool.execute("DELETE FROM crypto.keys WHERE name = $1", name)


async def _sign(keys: KeysUnderTest, name: str, **context: str) -> str:
    result = await keys.call(
        Crypto.KEY_SIGN.message_type, {"name": name, "message": b64(MESSAGE), **context}
    )
    signature: str = result["signature"]
    return signature


async def _valid(keys: KeysUnderTest, name: str, signature: str, **context: str) -> bool:
    payload = {"name": name, "message": b64(MESSAGE), "signature": signature, **context}
    result = await keys.call(Crypto.KEY_VERIFY.message_type, payload)
    valid: bool = result["valid"]
    return valid


@pytest.mark.integration
async def test_a_managed_key_signs_under_a_context(keys: KeysUnderTest, name: str) -> None:
    info = await keys.call(Crypto.KEY_CREATE.message_type, {"name": name, "type": "ML-DSA-65"})
    signature = await _sign(keys, name, context=b64(CONTEXT))
    assert await _valid(keys, name, signature, context=b64(CONTEXT))
    assert not await _valid(keys, name, signature, context=b64(b"x0tta6bl4/audit/v2"))
    assert not await _valid(keys, name, signature)
    # An independent implementation agrees, from the key's published public key.
    public_key = unb64(info["versions"][0]["public_key"])
    ml_dsa_65.verify(public_key, MESSAGE, unb64(signature), context=CONTEXT)


@pytest.mark.integration
async def test_a_managed_key_without_context_is_the_empty_context(
    keys: KeysUnderTest, name: str
) -> None:
    await keys.call(Crypto.KEY_CREATE.message_type, {"name": name, "type": "ML-DSA-44"})
    assert await _valid(keys, name, await _sign(keys, name), context="")
    assert await _valid(keys, name, await _sign(keys, name, context=""))


@pytest.mark.integration
async def test_a_managed_hybrid_key_refuses_a_context(keys: KeysUnderTest, name: str) -> None:
    await keys.call(Crypto.KEY_CREATE.message_type, {"name": name, "type": "Ed25519+ML-DSA-65"})
    signature = await _sign(keys, name)
    assert await _valid(keys, name, signature)
    for attempt in (
        _sign(keys, name, context=b64(CONTEXT)),
        _valid(keys, name, signature, context=b64(CONTEXT)),
    ):
        with pytest.raises(X0Error) as caught:
            await attempt
        assert (caught.value.code, caught.value.http_status) == ("invalid_input", 400)
        assert caught.value.details["field"] == "context"


@pytest.mark.integration
async def test_a_context_over_255_bytes_is_refused_before_any_key_is_loaded(
    keys: KeysUnderTest,
) -> None:
    # Validation of the message itself: the gateway answers this 422.
    with pytest.raises(ValidationError) as caught:
        await _sign(keys, "no-such-key", context=b64(bytes(256)))
    assert caught.value.errors()[0]["type"] == "signature_context_too_long"


# Stateless batches: each item carries its own context and gets its own outcome.


def _request_context() -> RequestContext:
    return request_context()


@pytest.fixture
def responder(registry: Registry) -> CapturingResponder:
    deps = CryptoDeps(
        settings=CryptoSettings(),
        algorithms=registry,
        metrics=CryptoMetrics(new_registry()),
        stores=Stores(schema="crypto"),
    )
    responder = CapturingResponder()
    stateless.register(responder, deps)  # type: ignore[arg-type]
    return responder


async def _call(responder: CapturingResponder, operation: Any, payload: dict[str, Any]) -> Any:
    result = await responder.call(operation.message_type, payload, _request_context())
    assert result is not None
    return result.model_dump(mode="json")


@pytest.mark.unit
async def test_batches_carry_a_context_per_item(
    responder: CapturingResponder, registry: Registry
) -> None:
    public_key, secret_key = registry.signature("ML-DSA-87").keypair()
    _, hybrid_sk = registry.signature("Ed25519+ML-DSA-65").keypair()
    contexts = [b"", b"tenant-a", bytes(range(255))]
    signed = await _call(
        responder,
        Crypto.SIGN_BATCH,
        {
            "items": [
                *(
                    {
                        "algorithm": "ML-DSA-87",
                        "secret_key": b64(secret_key),
                        "message": b64(MESSAGE),
                        "context": b64(context),
                    }
                    for context in contexts
                ),
                {
                    "algorithm": "Ed25519+ML-DSA-65",
                    "secret_key": b64(hybrid_sk),
                    "message": b64(MESSAGE),
                    "context": b64(CONTEXT),
                },
            ]
        },
    )
    *mldsa_items, hybrid_item = signed["items"]
    assert hybrid_item["result"] is None
    assert hybrid_item["error"]["code"] == "invalid_input"
    assert hybrid_item["error"]["details"]["field"] == "context"
    signatures = [item["result"]["signature"] for item in mldsa_items]

    # Every signature against every context: valid exactly on the diagonal.
    pairs = [(s, c) for s in range(len(contexts)) for c in range(len(contexts))]
    verified = await _call(
        responder,
        Crypto.VERIFY_BATCH,
        {
            "items": [
                {
                    "algorithm": "ML-DSA-87",
                    "public_key": b64(public_key),
                    "message": b64(MESSAGE),
                    "signature": signatures[s],
                    "context": b64(contexts[c]),
                }
                for s, c in pairs
            ]
        },
    )
    assert [item["result"]["valid"] for item in verified["items"]] == [s == c for s, c in pairs]

    # A verify item without the field is the empty context.
    bare = await _call(
        responder,
        Crypto.VERIFY,
        {
            "algorithm": "ML-DSA-87",
            "public_key": b64(public_key),
            "message": b64(MESSAGE),
            "signature": signatures[0],
        },
    )
    assert bare == {"valid": True}


@pytest.mark.unit
async def test_a_256_byte_context_fails_the_whole_batch_message(
    responder: CapturingResponder,
) -> None:
    item = {"algorithm": "ML-DSA-44", "secret_key": b64(bytes(32)), "message": b64(MESSAGE)}
    with pytest.raises(ValidationError) as caught:
        await _call(
            responder,
            Crypto.SIGN_BATCH,
            {"items": [item, {**item, "context": b64(bytes(256))}]},
        )
    error = caught.value.errors()[0]
    assert (error["type"], error["loc"]) == ("signature_context_too_long", ("items", 1, "context"))
