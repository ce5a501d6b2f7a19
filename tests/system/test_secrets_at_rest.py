"""After traffic that moves every kind of secret, none of them is anywhere it may not be.

The secrets: secret keys (stateless key pairs, a managed key's export), shared secrets
(encapsulate, decapsulate, a managed key's decapsulation, a mesh session's keys),
plaintexts (a managed key's encrypt and decrypt), and the credentials the processes run
with (the caller's API key, the stores' passwords, the Kafka sealing key, the KEK, the
API-key pepper). Where they may not be:

- any record of any topic on the broker (value, key and headers), read from the start;
- any log line of any service;
- any metric any service serves;
- any span any service exported (names, attributes, events);
- any problem response the gateway gave during the traffic.

A secret is looked for raw, as hex, and in standard and URL-safe base64 at each of the
three byte alignments (so that it is found inside a longer base64 value too). The test
checks that each place was read (records of this run on the request topic, the key
names in the logs, the spans of the traffic), so it cannot pass on an empty scan.
"""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from tests.system.conftest import RunningService
from x0_client import Client
from x0_common.kafka.clients import consumer_options
from x0_common.settings import KafkaSettings
from x0_common.testing.otlp import OtlpReceiver
from x0_common.testing.stack import StackEndpoints
from x0_crypto.settings import CryptoSettings
from x0_gateway.settings import GatewaySettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

# Shorter values are not worth looking for: they would match by chance.
SHORTEST_SECRET = 12


def encodings(secret: bytes) -> set[bytes]:
    """Every spelling of ``secret`` a leak could take, as bytes to search for."""
    found = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for shift in range(3):
            text = encode(bytes(shift) + secret)
            # The first group holds the filler bytes and the last may hold what follows
            # the secret in a longer value: only the groups made of the secret's bytes.
            found.add(text[4 if shift else 0 : -4])
    return {spelling for spelling in found if len(spelling) >= SHORTEST_SECRET}


@dataclass
class Secrets:
    """Every secret of the run by what it is, and where each was found."""

    by_label: dict[str, bytes] = field(default_factory=dict)

    def add(self, label: str, value: bytes | str) -> None:
        raw = value.encode() if isinstance(value, str) else value
        if len(raw) >= SHORTEST_SECRET:
            self.by_label[label] = raw

    def leaks(self, place: str, blobs: Iterable[bytes]) -> list[str]:
        """``"<label> in <place>"`` for each secret found in any of ``blobs``."""
        spellings = {label: encodings(value) for label, value in self.by_label.items()}
        found = set()
        for blob in blobs:
            for label, options in spellings.items():
                if label not in found and any(option in blob for option in options):
                    found.add(label)
        return [f"{label} in {place}" for label in sorted(found)]


def test_the_scan_finds_a_secret_in_every_spelling() -> None:
    secret = os.urandom(32)
    secrets = Secrets()
    secrets.add("s", secret)
    inside = b"prefix-" + secret + b"-suffix"
    for blob in (
        inside,
        secret.hex().encode(),
        base64.b64encode(b"a" + secret + b"bc"),
        base64.urlsafe_b64encode(b"ab" + secret).rstrip(b"="),
        base64.b64encode(secret),
    ):
        assert secrets.leaks("blob", [blob]) == ["s in blob"], blob
    assert secrets.leaks("blob", [base64.b64encode(os.urandom(64))]) == []


@dataclass
class Traffic:
    """What the traffic left to look at: its secrets, key names and error responses."""

    secrets: Secrets
    key_names: list[str]
    problems: list[bytes]


def _send_traffic(gateway: RunningService, api_key: str, run: str) -> Traffic:
    secrets = Secrets()
    problems: list[bytes] = []

    def keep_problem(response: httpx.Response) -> None:
        if response.status_code >= 400:
            problems.append(response.read())

    http = httpx.Client(
        base_url=gateway.url,
        timeout=60,
        headers={"Authorization": f"Bearer {api_key}"},
        event_hooks={"response": [keep_problem]},
    )
    with http, Client(http_client=http) as x0:
        for kem in ("ML-KEM-768", "X-Wing"):
            pair = x0.kem_keypair(algorithm=kem)
            secrets.add(f"{kem} secret key", pair.secret_key)
            sent = x0.kem_encapsulate(algorithm=kem, public_key=pair.public_key)
            secrets.add(f"{kem} shared secret", sent.shared_secret)
            opened = x0.kem_decapsulate(
                algorithm=kem, secret_key=pair.secret_key, ciphertext=sent.ciphertext
            )
            assert opened.shared_secret == sent.shared_secret
        for signature in ("ML-DSA-65", "Ed25519+ML-DSA-65"):
            pair = x0.signature_keypair(algorithm=signature)
            secrets.add(f"{signature} secret key", pair.secret_key)
            x0.sign(algorithm=signature, secret_key=pair.secret_key, message=b"signed")

        # A refused request that carries a secret: the secret must not come back.
        refused = os.urandom(40)
        secrets.add("refused secret key", refused)
        bad = http.post(
            "/v1/crypto/kem/decapsulate",
            json={
                "algorithm": "ML-KEM-768",
                "secret_key": base64.b64encode(refused).decode(),
                "ciphertext": base64.b64encode(bytes(1088)).decode(),
            },
        )
        assert bad.status_code == 400, bad.text

        node_a, node_b, vault = f"leak-a-{run}", f"leak-b-{run}", f"leak-vault-{run}"
        for name in (node_a, node_b):
            x0.create_key(name=name, type="X-Wing")
        x0.create_key(name=vault, type="ML-KEM-768", exportable=True)
        plaintext = f"plaintext of {run} that must stay secret".encode()
        secrets.add("managed plaintext", plaintext)
        sealed = x0.key_encrypt(name=vault, plaintext=plaintext)
        assert x0.key_decrypt(name=vault, ciphertext=sealed.ciphertext).plaintext == plaintext
        for version, secret_key in x0.export_key(name=vault).secret_keys.items():
            secrets.add(f"exported secret key v{version}", secret_key)
        x0.rotate_key(name=vault)

        opened_session = x0.session_initiate(initiator_key=node_a, responder_key=node_b)
        accepted = x0.session_accept(
            responder_key=node_b,
            responder_key_version=opened_session.responder_key_version,
            session_id=opened_session.session_id,
            ciphertext=opened_session.ciphertext,
            initiator_public_key=opened_session.initiator_public_key,
        )
        assert accepted.keys == opened_session.keys
        secrets.add("session key a->b", opened_session.keys.initiator_to_responder)
        secrets.add("session key b->a", opened_session.keys.responder_to_initiator)
    return Traffic(secrets, [node_a, node_b, vault], problems)


def _add_credentials(secrets: Secrets, stack: StackEndpoints, api_key: str) -> None:
    secrets.add("caller's API key", api_key)
    secrets.add("Kafka sealing key", KafkaSettings().sealing_key_bytes())
    secrets.add("KEK", CryptoSettings().kek.get_secret_value())
    secrets.add("API-key pepper", GatewaySettings().pepper())
    if stack.credentials is not None:
        for password_file in sorted(stack.credentials.iterdir()):
            if password_file.is_file():
                secrets.add(f"password {password_file.name}", password_file.read_bytes().strip())


async def _every_record(settings: KafkaSettings) -> list[tuple[str, bytes]]:
    """``(topic, key + value + headers)`` of every record on the broker, from the start."""
    options = {**consumer_options(settings), "client_id": f"secret-scan-{uuid.uuid4().hex[:6]}"}
    consumer = AIOKafkaConsumer(**options)
    await consumer.start()
    try:
        # As x0_common.testing.kafka does: no public call lists every topic's partitions.
        cluster = await consumer._client.fetch_all_metadata()
        partitions = [
            TopicPartition(topic, number)
            for topic in sorted(cluster.topics())
            for number in sorted(cluster.partitions_for_topic(topic) or ())
        ]
        assert partitions, "the broker lists no topic"
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        remaining = {tp for tp, end in ends.items() if end > 0}
        records: list[tuple[str, bytes]] = []
        idle_fetches = 0
        while remaining and idle_fetches < 3:
            batches = await consumer.getmany(timeout_ms=2000, max_records=5000)
            idle_fetches = 0 if batches else idle_fetches + 1
            for tp, batch in batches.items():
                records.extend((tp.topic, _record_bytes(record)) for record in batch)
            remaining = {tp for tp in remaining if await consumer.position(tp) < ends[tp]}
        assert not remaining, f"partitions not read to their end: {sorted(map(str, remaining))}"
        return records
    finally:
        await consumer.stop()


def _record_bytes(record: ConsumerRecord[bytes, bytes]) -> bytes:
    headers = b"".join(name.encode() + value for name, value in record.headers)
    return (record.key or b"") + (record.value or b"") + headers


def _span_blobs(otlp: OtlpReceiver) -> Iterator[bytes]:
    for span in otlp.spans:
        yield repr(span).encode()


def _metrics(services: dict[str, RunningService]) -> Iterator[bytes]:
    for service in services.values():
        response = httpx.get(f"http://127.0.0.1:{service.scraped_port}/metrics", timeout=10)
        response.raise_for_status()
        yield response.content


def test_no_secret_is_at_rest_in_kafka_or_in_logs_metrics_spans_or_problems(
    client: httpx.Client,
    services: dict[str, RunningService],
    otlp: OtlpReceiver,
    stack: StackEndpoints,
    run_id: str,
) -> None:
    api_key = client.headers["Authorization"].removeprefix("Bearer ")
    traffic = _send_traffic(services["gateway"], api_key, run_id)
    secrets = traffic.secrets
    _add_credentials(secrets, stack, api_key)
    assert len(secrets.by_label) >= 20, sorted(secrets.by_label)

    records = asyncio.run(_every_record(stack.kafka_settings()))
    logs = [service.log.read_bytes() for service in services.values()]
    spans = list(_span_blobs(otlp))
    leaks = [
        *secrets.leaks("a Kafka record", (blob for _, blob in records)),
        *secrets.leaks("a log", logs),
        *secrets.leaks("a metric", _metrics(services)),
        *secrets.leaks("a span", spans),
        *secrets.leaks("a problem response", traffic.problems),
    ]
    assert leaks == []

    # Each place was read, and holds this run's traffic.
    # (Nineteen of the traffic's calls reach the crypto worker; earlier tests add more.)
    assert sum(topic == "x0.crypto.requests" for topic, _ in records) >= 19
    assert all(name.encode() in b"".join(logs) for name in traffic.key_names)
    assert any(b"x0-crypto" in blob for blob in spans)
    assert traffic.problems, "the refused request's problem response was not kept"
