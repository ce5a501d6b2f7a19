"""One valid request per routed operation, with every kind of field the contract has
(path fields, optional fields set and unset, bytes, nested models, datetimes, lists).

A new routed operation fails ``test_every_routed_operation_has_a_sample`` until it
gets a sample here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel

from x0_common.events import crypto as c
from x0_common.events import rag as r
from x0_common.events import telemetry as t

NOW = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)
# Names that need quoting or decoding on the way: dots, colons, a space is not allowed.
KEY = "node-a.v2"
NODE = "node:7"

_HEARTBEAT = t.NodeHeartbeat(node_id=NODE, mesh_id="lab", timestamp=NOW, software_version="1.2")
_METRICS = t.NodeMetrics(
    node_id="n2",
    mesh_id="lab",
    timestamp=NOW,
    cpu=0.5,
    memory=0.25,
    rtt_ms=12.5,
    packet_loss=0.0,
    throughput_bps=1e6,
    neighbours=[t.Neighbour(node_id=NODE, link_quality=0.9)],
)

SAMPLES: dict[str, BaseModel] = {
    "algorithms": c.AlgorithmsRequest(),
    "kem_keypair": c.KemKeypairRequest(algorithm="ML-KEM-768"),
    "kem_keypair_batch": c.KemKeypairBatchRequest(
        items=[c.KemKeypairRequest(algorithm="X-Wing"), c.KemKeypairRequest(algorithm="ML-KEM-512")]
    ),
    "kem_encapsulate": c.EncapsulateRequest(algorithm="X-Wing", public_key=b"\x00\xff" * 8),
    "kem_encapsulate_batch": c.EncapsulateBatchRequest(
        items=[c.EncapsulateRequest(algorithm="ML-KEM-768", public_key=b"\xfb\xff")]
    ),
    "kem_decapsulate": c.DecapsulateRequest(
        algorithm="ML-KEM-1024", secret_key=b"secret", ciphertext=b"\xfe\xfd"
    ),
    "kem_decapsulate_batch": c.DecapsulateBatchRequest(
        items=[c.DecapsulateRequest(algorithm="X-Wing", secret_key=b"s", ciphertext=b"c")]
    ),
    "signature_keypair": c.SignatureKeypairRequest(algorithm="ML-DSA-65"),
    "signature_keypair_batch": c.SignatureKeypairBatchRequest(
        items=[c.SignatureKeypairRequest(algorithm="Ed25519+ML-DSA-65")]
    ),
    "sign": c.SignRequest(algorithm="ML-DSA-44", secret_key=b"sk", message=b"m", context=b"ctx"),
    "sign_batch": c.SignBatchRequest(
        items=[c.SignRequest(algorithm="ML-DSA-87", secret_key=b"sk", message=b"")]
    ),
    "verify": c.VerifyRequest(
        algorithm="ML-DSA-65", public_key=b"pk", message=b"\x00", signature=b"sig"
    ),
    "verify_batch": c.VerifyBatchRequest(
        items=[
            c.VerifyRequest(algorithm="ML-DSA-65", public_key=b"p", message=b"m", signature=b"s")
        ]
    ),
    "create_key": c.CreateKeyRequest(
        name=KEY,
        type="ML-DSA-65",
        exportable=True,
        auto_rotate_period_seconds=3600,
        request_id="r1",
    ),
    "list_keys": c.ListKeysRequest(),
    "read_key": c.KeyNameRequest(name=KEY),
    "rotate_key": c.KeyNameRequest(name=KEY),
    "configure_key": c.UpdateKeyConfigRequest(name=KEY, min_decryption_version=2),
    "delete_key": c.KeyNameRequest(name=KEY),
    "export_key": c.ExportKeyRequest(name=KEY, version=3),
    "backup_key": c.KeyNameRequest(name=KEY),
    "restore_key": c.RestoreKeyRequest(backup=b"\x01\x02\x03", name="copy", force=True),
    "key_decapsulate": c.KeyDecapsulateRequest(name=KEY, ciphertext=b"ct", version=1),
    "key_sign": c.KeySignRequest(name=KEY, message=b"hello", context=b"v1"),
    "key_verify": c.KeyVerifyRequest(name=KEY, message=b"hello", signature=b"sig", version=2),
    "key_encrypt": c.EncryptRequest(name=KEY, plaintext=b"hello", associated_data=b"aad"),
    "key_decrypt": c.DecryptRequest(name=KEY, ciphertext="x0:v1:AAEC"),
    "key_rewrap": c.RewrapRequest(name=KEY, ciphertext="x0:v1:AAEC", associated_data=b"a"),
    "session_initiate": c.SessionInitiateRequest(initiator_key="a", responder_key="b"),
    "session_accept": c.SessionAcceptRequest(
        responder_key="b",
        responder_key_version=1,
        session_id="0123456789abcdef",
        ciphertext=b"ct",
        initiator_public_key=b"pk",
    ),
    "beacon_sign": c.BeaconSignRequest(key_name="a", node_id=NODE),
    "beacon_verify": c.BeaconVerifyRequest(
        beacon=c.Beacon(node_id=NODE, timestamp_ms=1_700_000_000_000, nonce=b"nonce"),
        signature=b"sig",
        public_key=b"pk",
    ),
    "create_collection": r.CreateCollectionRequest(
        name="notes", index=r.IndexParams(m=8), chunk_size=256
    ),
    "list_collections": r.ListCollectionsRequest(),
    "get_collection": r.CollectionNameRequest(name="notes"),
    "delete_collection": r.CollectionNameRequest(name="notes"),
    "get_document": r.GetDocumentRequest(collection="notes", id="intro notes.md"),
    "search": r.SearchRequest(
        collection="notes", query="weather", k=3, filter={"lang": {"in": ["en", "fr"]}}
    ),
    "upsert_documents": r.UpsertDocuments(
        collection="notes",
        documents=[
            r.Document(id="a/1", text="The weather is lovely.", metadata={"lang": "en"}),
            r.Document(id="2", text="Kafka keeps order per partition."),
        ],
    ),
    "delete_documents": r.DeleteDocuments(collection="notes", ids=["intro notes.md"]),
    "get_ingest_outcome": r.IngestOutcomeRequest(collection="notes", version="0:1"),
    "publish_events": t.PublishEvents(events=[_HEARTBEAT, _METRICS]),
    "list_nodes": t.ListNodesRequest(mesh_id="lab", status="up", limit=5),
    "get_node": t.NodeRequest(node_id=NODE),
    "node_history": t.HistoryRequest(
        node_id=NODE, start=NOW, end=NOW.replace(hour=20), step_seconds=300
    ),
    "topology": t.TopologyRequest(mesh_id="lab"),
}
