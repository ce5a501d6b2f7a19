"""Kafka: mutual TLS and least-privilege ACLs on the real broker (issue 12).

The stack's broker speaks mutual TLS only and maps a certificate's CN to its principal;
StandardAuthorizer allows what deploy/local-stack/kafka_access.py grants. Each identity
here connects with its own development certificate (x0_common.identity.development):

- no certificate, or one from another CA, and the TLS handshake fails;
- each identity produces to and consumes from every topic, and the broker allows
  exactly the pairs of ``EXPECTED`` (written out from the issue, not derived from the
  ACL code it checks) and refuses the rest;
- the forgeries of the issue fail: an upstream producer or a worker cannot write a
  request topic, so a forged ``x0-principal`` header cannot reach a worker: only the
  gateway may write request topics.
"""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAuthorizationFailedError

from x0_common.events.envelope import Headers
from x0_common.kafka.clients import connection_options
from x0_common.settings import KafkaSettings, TlsSettings
from x0_common.testing.stack import StackEndpoints

pytestmark = [pytest.mark.security, pytest.mark.integration]

CRYPTO = "x0.crypto.requests"
RAG = "x0.rag.requests"
INGEST = "x0.rag.ingest"
INDEX = "x0.rag.index"
EVENTS = "x0.telemetry.events"
TELEMETRY = "x0.telemetry.requests"
AUDIT = "x0.audit"
REPLIES = "x0.gateway.replies.security-test"
REQUEST_TOPICS = (CRYPTO, RAG, TELEMETRY)

# What each identity may do, per issue 12: the gateway writes the request topics and
# reads only its replies (and its audit trail); a worker reads only its requests and
# writes replies and its dead letters; upstream producers write only x0.rag.ingest and
# x0.telemetry.events; the lag scaler (keda) reads nothing.
_PRODUCERS = {"write": {INGEST, EVENTS}, "read": set()}
EXPECTED: dict[str, dict[str, set[str]]] = {
    "gateway": {
        "write": {CRYPTO, RAG, INGEST, EVENTS, TELEMETRY, AUDIT, f"{AUDIT}.dlq"},
        "read": {REPLIES, AUDIT},
    },
    "crypto": {"write": {REPLIES, f"{CRYPTO}.dlq"}, "read": {CRYPTO}},
    "rag": {
        "write": {REPLIES, INDEX, INGEST, f"{RAG}.dlq", f"{INGEST}.dlq"},
        "read": {RAG, INGEST, INDEX},
    },
    "telemetry": {
        "write": {REPLIES, f"{EVENTS}.dlq", f"{TELEMETRY}.dlq"},
        "read": {EVENTS, TELEMETRY},
    },
    "producer-default": _PRODUCERS,
    "producer-acme": _PRODUCERS,
    "keda": {"write": set(), "read": set()},
}
TOPICS = sorted(
    {CRYPTO, RAG, INGEST, INDEX, EVENTS, TELEMETRY, AUDIT, REPLIES}
    | {f"{t}.dlq" for t in (CRYPTO, RAG, INGEST, EVENTS, TELEMETRY, AUDIT)}
)


@pytest.fixture(scope="module")
def identities(stack: StackEndpoints) -> Path:
    """The stack's identity folder; a stack without one has no mutual TLS to test."""
    if stack.identities is None:
        pytest.fail("the stack has no identities (X0_STACK_IDENTITY): Kafka is not on mTLS")
    return stack.identities


def _settings(stack: StackEndpoints, folder: Path, *, bundle: Path | None = None) -> KafkaSettings:
    return KafkaSettings(
        bootstrap_servers=stack.kafka_bootstrap,
        request_timeout_ms=5_000,
        tls=TlsSettings(
            cert_file=folder / "cert.pem",
            key_file=folder / "key.pem",
            bundle_file=bundle or folder / "bundle.pem",
        ),
    )


async def _admin_starts(settings: KafkaSettings) -> None:
    admin = AIOKafkaAdminClient(**connection_options(settings))
    try:
        await admin.start()
    finally:
        await admin.close()


async def test_client_without_a_certificate_cannot_connect(stack: StackEndpoints) -> None:
    plaintext = KafkaSettings(
        bootstrap_servers=stack.kafka_bootstrap, security_protocol="PLAINTEXT"
    )
    with pytest.raises(KafkaConnectionError):
        await _admin_starts(plaintext)


async def test_tls_client_without_a_certificate_cannot_connect(
    stack: StackEndpoints, identities: Path
) -> None:
    """The server's certificate verifies, but the client presents none."""
    context = ssl.create_default_context(cafile=identities / "ca" / "ca.pem")
    admin = AIOKafkaAdminClient(
        bootstrap_servers=stack.kafka_bootstrap,
        security_protocol="SSL",
        ssl_context=context,
        request_timeout_ms=5_000,
    )
    try:
        with pytest.raises(KafkaConnectionError):
            await admin.start()
    finally:
        await admin.close()


async def test_certificate_from_another_trust_domain_cannot_connect(
    stack: StackEndpoints, identities: Path
) -> None:
    """A certificate for ops from another trust domain's CA (other.example) is refused."""
    other = identities / "other-domain" / "ops"
    forged = _settings(stack, other, bundle=identities / "ca" / "ca.pem")
    with pytest.raises(KafkaConnectionError):
        await _admin_starts(forged)
    # The same client with the stack's own ops certificate connects: the CA decided.
    await _admin_starts(_settings(stack, identities / "ops"))


@pytest.fixture(scope="module")
async def seeded(stack: StackEndpoints) -> None:
    """One record on partition 0 of every topic (written as ops), so that a permitted
    read has something to find; the gateway replica's reply topic is made first."""
    admin = AIOKafkaAdminClient(**stack.kafka_options())
    await admin.start()
    try:
        if REPLIES not in await admin.list_topics():
            await admin.create_topics([NewTopic(REPLIES, 1, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(**stack.kafka_options(), acks="all")
    await producer.start()
    try:
        for topic in TOPICS:
            await producer.send_and_wait(topic, b"security-test seed", partition=0)
    finally:
        await producer.stop()


async def _can_produce(settings: KafkaSettings, topic: str) -> bool:
    producer = AIOKafkaProducer(**connection_options(settings), acks="all")
    await producer.start()
    try:
        # Not a request any worker would act on: no type header, so a dead letter.
        await producer.send_and_wait(topic, b"security-test", partition=0)
    except TopicAuthorizationFailedError:
        return False
    finally:
        await producer.stop()
    return True


async def _can_consume(settings: KafkaSettings, topic: str) -> bool:
    """Reads partition 0 from the start: True when the seeded record comes back. A
    refusal is an authorisation error, or (without even Describe) no data at all."""
    consumer = AIOKafkaConsumer(
        **connection_options(settings), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        records = await consumer.getmany(partition, timeout_ms=3_000)
    except TopicAuthorizationFailedError:
        return False
    finally:
        await consumer.stop()
    return any(records.values())


@pytest.mark.usefixtures("seeded")
@pytest.mark.parametrize("identity", sorted(EXPECTED))
async def test_each_identity_does_exactly_what_its_acls_allow(
    stack: StackEndpoints, identities: Path, identity: str
) -> None:
    settings = _settings(stack, identities / identity)
    produced = await asyncio.gather(*(_can_produce(settings, t) for t in TOPICS))
    consumed = await asyncio.gather(*(_can_consume(settings, t) for t in TOPICS))
    writes = {t for t, ok in zip(TOPICS, produced, strict=True) if ok}
    reads = {t for t, ok in zip(TOPICS, consumed, strict=True) if ok}
    assert writes == EXPECTED[identity]["write"]
    assert reads == EXPECTED[identity]["read"]


@pytest.mark.parametrize("identity", ["producer-acme", "producer-default", "rag", "crypto"])
async def test_only_the_gateway_may_send_requests_with_a_principal(
    stack: StackEndpoints, identities: Path, identity: str
) -> None:
    """The forgeries of issue 12: a request with a forged ``x0-principal`` header (an
    admin of another tenant) straight to a request topic, e.g. a crypto ``export``."""
    settings = _settings(stack, identities / identity)
    producer = AIOKafkaProducer(**connection_options(settings), acks="all")
    await producer.start()
    try:
        for topic in REQUEST_TOPICS:
            headers = [
                (Headers.PRINCIPAL, b'{"tenant":"other","scopes":["*"]}'),
                (Headers.CORRELATION_ID, uuid.uuid4().hex.encode()),
                (Headers.REPLY_TO, REPLIES.encode()),
            ]
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(topic, b"{}", headers=headers)
    finally:
        await producer.stop()


async def test_no_service_may_create_topics(stack: StackEndpoints, identities: Path) -> None:
    """Topics are made by ops tooling; a worker asking for one is refused (the gateway
    may make only its replicas' reply topics)."""
    for identity in ("crypto", "rag", "telemetry", "producer-acme", "gateway"):
        admin = AIOKafkaAdminClient(**connection_options(_settings(stack, identities / identity)))
        await admin.start()
        try:
            response = await admin.create_topics(
                [NewTopic(f"x0.forged.{uuid.uuid4().hex[:8]}", 1, 1)]
            )
        except KafkaError:
            continue
        finally:
            await admin.close()
        codes = [error for _topic, error, *_ in response.topic_errors]
        assert codes == [TopicAuthorizationFailedError.errno], identity
