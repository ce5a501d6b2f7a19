"""No key, shared secret or plaintext ever appears in a span the crypto worker makes."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator

import pytest
from tests.integration.conftest import RequesterUnderTest, start_requester

from x0_common.contract import Crypto
from x0_common.events import crypto as c
from x0_common.kafka.broker import new_broker
from x0_common.metrics import ResponderMetrics, new_registry
from x0_common.resources import Stores
from x0_common.settings import KafkaSettings
from x0_common.testing import SpanCapture
from x0_common.testing.kafka import responder_under_test
from x0_common.testing.principals import AsPrincipal, principal_header
from x0_crypto.deps import CryptoDeps
from x0_crypto.domain import build_registry
from x0_crypto.handlers import stateless
from x0_crypto.metrics import CryptoMetrics
from x0_crypto.settings import CryptoSettings

pytestmark = pytest.mark.integration


@pytest.fixture
async def crypto_requester(
    kafka_settings: KafkaSettings, span_capture: SpanCapture
) -> AsyncIterator[tuple[RequesterUnderTest, str]]:
    """Stateless crypto handlers on an in-process responder, and a requester for them."""
    topic = f"x0.test.crypto.{uuid.uuid4().hex[:8]}"
    registry = new_registry()
    broker = new_broker(kafka_settings)
    responder = responder_under_test(
        broker, kafka_settings, topic, metrics=ResponderMetrics(registry, "crypto")
    )
    deps = CryptoDeps(
        settings=CryptoSettings(),
        algorithms=build_registry(),
        metrics=CryptoMetrics(registry),
        stores=Stores(schema="crypto"),
    )
    stateless.register(responder, deps)
    await responder.ensure_topics()
    await broker.start()
    await responder.wait_assigned()
    requester = await start_requester(kafka_settings, topic)
    span_capture.clear()
    yield requester, topic
    await requester.requester.stop()
    await responder.close()
    await broker.stop()


def _forms(secret: bytes) -> list[str]:
    return [
        base64.urlsafe_b64encode(secret).rstrip(b"=").decode()[:24],
        secret.hex()[:32],
        repr(secret[:16])[2:-1],
    ]


async def test_crypto_spans_name_operations_but_hold_no_secret(
    crypto_requester: tuple[RequesterUnderTest, str], span_capture: SpanCapture
) -> None:
    under_test, topic = crypto_requester
    # As the gateway asks: on behalf of an authenticated caller.
    request = AsPrincipal(under_test.requester, principal_header()).request
    pair = await request(
        topic, Crypto.KEM_KEYPAIR.message_type, c.KemKeypairRequest(algorithm="X-Wing"), timeout=10
    )
    public_key = base64.urlsafe_b64decode(pair["public_key"] + "==")
    secret_key = base64.urlsafe_b64decode(pair["secret_key"] + "==")
    sent = await request(
        topic,
        Crypto.ENCAPSULATE.message_type,
        c.EncapsulateRequest(algorithm="X-Wing", public_key=public_key),
        timeout=10,
    )
    shared = base64.urlsafe_b64decode(sent["shared_secret"] + "==")
    ciphertext = base64.urlsafe_b64decode(sent["ciphertext"] + "==")
    await request(
        topic,
        Crypto.DECAPSULATE.message_type,
        c.DecapsulateRequest(algorithm="X-Wing", secret_key=secret_key, ciphertext=ciphertext),
        timeout=10,
    )

    spans = span_capture.spans
    operations = {s.attributes.get("x0.crypto.operation") for s in spans if s.attributes}
    assert {"kem_keypair", "encapsulate", "decapsulate"} <= operations
    text = " ".join(
        f"{s.name} {dict(s.attributes or {})} {[dict(e.attributes or {}) for e in s.events]}"
        for s in spans
    )
    for secret in (secret_key, shared):
        for form in _forms(secret):
            assert form not in text
