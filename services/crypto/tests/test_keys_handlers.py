"""The managed-key handlers on the real PostgreSQL, called as the responder calls them:
JSON payloads in, JSON results or typed errors out."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from x0_common.contract import Crypto
from x0_common.errors import X0Error
from x0_common.kafka.broker import new_broker
from x0_common.settings import KafkaSettings
from x0_common.testing.kafka import responder_under_test
from x0_crypto.domain import KEM_ALGORITHMS, SIGNATURE_ALGORITHMS, Registry
from x0_crypto.handlers import keys as key_handlers

from .keys_support import KeysUnderTest, b64, unb64

pytestmark = pytest.mark.integration


async def fails(keys: KeysUnderTest, message_type: str, payload: dict[str, Any]) -> X0Error:
    """The typed error the handler raises (a bare exception would be a 500: a bug)."""
    with pytest.raises(X0Error) as caught:
        await keys.call(message_type, payload)
    assert caught.value.http_status < 500, caught.value
    return caught.value


async def create(keys: KeysUnderTest, name: str, key_type: str, **extra: Any) -> dict[str, Any]:
    return await keys.call(
        Crypto.KEY_CREATE.message_type, {"name": name, "type": key_type, **extra}
    )


def test_every_key_type_has_a_handler_and_the_real_responder_accepts_them(
    keys: KeysUnderTest, kafka_settings: KafkaSettings
) -> None:
    declared = {op.message_type for name, op in vars(Crypto).items() if name.startswith("KEY_")}
    assert set(keys.responder.handlers) == declared
    # The real Responder resolves each handler's type hints at registration.
    responder = responder_under_test(new_broker(kafka_settings), kafka_settings, "x0.test.keys")
    key_handlers.register(responder, keys.deps)


@pytest.mark.parametrize("key_type", KEM_ALGORITHMS)
@pytest.mark.parametrize("aad", [None, b"tenant=7"], ids=["no-aad", "aad"])
async def test_encrypt_decrypt_round_trip(
    keys: KeysUnderTest, prefix: str, key_type: str, aad: bytes | None
) -> None:
    name = f"{prefix}-k"
    await create(keys, name, key_type)
    extra = {} if aad is None else {"associated_data": b64(aad)}
    for plaintext in (b"", b"attack at dawn", bytes(range(256)) * 100):
        encrypted = await keys.call(
            Crypto.KEY_ENCRYPT.message_type, {"name": name, "plaintext": b64(plaintext), **extra}
        )
        assert encrypted["ciphertext"].startswith("x0:v1:")
        assert encrypted["version"] == 1
        decrypted = await keys.call(
            Crypto.KEY_DECRYPT.message_type,
            {"name": name, "ciphertext": encrypted["ciphertext"], **extra},
        )
        assert unb64(decrypted["plaintext"]) == plaintext


@pytest.mark.parametrize("key_type", KEM_ALGORITHMS)
async def test_bad_ciphertexts_are_clean_400s(
    keys: KeysUnderTest, prefix: str, key_type: str
) -> None:
    name, other = f"{prefix}-k", f"{prefix}-o"
    await create(keys, name, key_type)
    await create(keys, other, key_type)
    plaintext = b"the plaintext must never show up in an error"
    ciphertext = (
        await keys.call(
            Crypto.KEY_ENCRYPT.message_type,
            {"name": name, "plaintext": b64(plaintext), "associated_data": b64(b"a")},
        )
    )["ciphertext"]
    blob = unb64(ciphertext.removeprefix("x0:v1:"))
    cases: dict[str, tuple[str, dict[str, Any]]] = {}
    for index in (0, len(blob) // 2, len(blob) - 1):
        tampered = bytearray(blob)
        tampered[index] ^= 0x01
        cases[f"tampered@{index}"] = (
            "decryption_failed",
            {
                "name": name,
                "ciphertext": f"x0:v1:{b64(bytes(tampered))}",
                "associated_data": b64(b"a"),
            },
        )
    cases["wrong aad"] = (
        "decryption_failed",
        {"name": name, "ciphertext": ciphertext, "associated_data": b64(b"b")},
    )
    cases["missing aad"] = ("decryption_failed", {"name": name, "ciphertext": ciphertext})
    cases["other key"] = (
        "decryption_failed",
        {"name": other, "ciphertext": ciphertext, "associated_data": b64(b"a")},
    )
    cases["unknown version"] = (
        "unknown_version",
        {
            "name": name,
            "ciphertext": ciphertext.replace("x0:v1:", "x0:v7:"),
            "associated_data": b64(b"a"),
        },
    )
    cases["bad prefix"] = ("malformed", {"name": name, "ciphertext": "x0:1:" + ciphertext[6:]})
    cases["bad base64"] = ("bad_base64url", {"name": name, "ciphertext": "x0:v1:A"})
    # 36 base64url characters: 27 bytes, canonical, shorter than any KEM ciphertext.
    cases["short"] = ("too short", {"name": name, "ciphertext": ciphertext[:42]})
    for label, (reason, payload) in cases.items():
        for message_type in (Crypto.KEY_DECRYPT.message_type, Crypto.KEY_REWRAP.message_type):
            error = await fails(keys, message_type, payload)
            assert (error.code, error.details.get("reason")) == ("invalid_input", reason), label
            assert plaintext.hex() not in f"{error} {error.details}"
            assert b64(plaintext) not in f"{error} {error.details}"
    failures = keys.sample(
        "x0_crypto_key_failures_total", operation="decrypt", code="invalid_input"
    )
    assert failures == len(cases)


async def test_rewrap_and_min_decryption_version(keys: KeysUnderTest, prefix: str) -> None:
    name = f"{prefix}-r"
    await create(keys, name, "X-Wing")
    aad = {"associated_data": b64(b"ctx")}
    v1 = (
        await keys.call(
            Crypto.KEY_ENCRYPT.message_type, {"name": name, "plaintext": b64(b"hello"), **aad}
        )
    )["ciphertext"]
    rotated = await keys.call(Crypto.KEY_ROTATE.message_type, {"name": name})
    assert rotated["latest_version"] == 2
    assert [v["version"] for v in rotated["versions"]] == [1, 2]
    assert keys.sample("x0_crypto_key_rotations_total", trigger="manual") == 1

    rewrapped = await keys.call(
        Crypto.KEY_REWRAP.message_type, {"name": name, "ciphertext": v1, **aad}
    )
    assert rewrapped["ciphertext"].startswith("x0:v2:")
    assert rewrapped["version"] == 2
    assert "plaintext" not in rewrapped
    for ciphertext in (v1, rewrapped["ciphertext"]):
        plain = await keys.call(
            Crypto.KEY_DECRYPT.message_type, {"name": name, "ciphertext": ciphertext, **aad}
        )
        assert unb64(plain["plaintext"]) == b"hello"

    configured = await keys.call(
        Crypto.KEY_CONFIG.message_type, {"name": name, "min_decryption_version": 2}
    )
    assert configured["min_decryption_version"] == 2
    for message_type in (Crypto.KEY_DECRYPT.message_type, Crypto.KEY_REWRAP.message_type):
        error = await fails(keys, message_type, {"name": name, "ciphertext": v1, **aad})
        assert (error.http_status, error.details["reason"]) == (400, "version_too_old")
    error = await fails(
        keys,
        Crypto.KEY_DECAPSULATE.message_type,
        {"name": name, "ciphertext": b64(bytes(1120)), "version": 1},
    )
    assert error.details["reason"] == "version_too_old"
    plain = await keys.call(
        Crypto.KEY_DECRYPT.message_type,
        {"name": name, "ciphertext": rewrapped["ciphertext"], **aad},
    )
    assert unb64(plain["plaintext"]) == b"hello"

    error = await fails(
        keys, Crypto.KEY_CONFIG.message_type, {"name": name, "min_decryption_version": 3}
    )
    assert error.code == "invalid_input"
    await keys.call(Crypto.KEY_CONFIG.message_type, {"name": name, "min_decryption_version": 1})
    plain = await keys.call(
        Crypto.KEY_DECRYPT.message_type, {"name": name, "ciphertext": v1, **aad}
    )
    assert unb64(plain["plaintext"]) == b"hello"


@pytest.mark.parametrize("key_type", SIGNATURE_ALGORITHMS)
async def test_sign_and_verify_with_any_version(
    keys: KeysUnderTest, registry: Registry, prefix: str, key_type: str
) -> None:
    name = f"{prefix}-s"
    await create(keys, name, key_type)
    await keys.call(Crypto.KEY_ROTATE.message_type, {"name": name})
    info = await keys.call(Crypto.KEY_READ.message_type, {"name": name})
    public = {v["version"]: unb64(v["public_key"]) for v in info["versions"]}
    message = b64(b"beacon 42")

    latest = await keys.call(Crypto.KEY_SIGN.message_type, {"name": name, "message": message})
    older = await keys.call(
        Crypto.KEY_SIGN.message_type, {"name": name, "message": message, "version": 1}
    )
    assert (latest["version"], older["version"]) == (2, 1)
    scheme = registry.signature(key_type)
    # The stateless backend agrees, with the public keys KeyInfo lists.
    assert scheme.verify(public[2], b"beacon 42", unb64(latest["signature"]))
    assert scheme.verify(public[1], b"beacon 42", unb64(older["signature"]))

    async def verify(signature: str, version: int | None, text: str = message) -> bool:
        payload = {"name": name, "message": text, "signature": signature, "version": version}
        return (await keys.call(Crypto.KEY_VERIFY.message_type, payload))["valid"]

    assert await verify(latest["signature"], None)
    assert await verify(older["signature"], 1)
    assert not await verify(older["signature"], None)
    assert not await verify(latest["signature"], None, b64(b"beacon 43"))
    assert (
        await fails(
            keys, Crypto.KEY_SIGN.message_type, {"name": name, "message": message, "version": 3}
        )
    ).code == "not_found"
    short = await fails(
        keys,
        Crypto.KEY_VERIFY.message_type,
        {"name": name, "message": message, "signature": b64(b"x")},
    )
    assert short.code == "invalid_input"


@pytest.mark.parametrize("key_type", KEM_ALGORITHMS)
async def test_decapsulate_matches_a_stateless_encapsulation(
    keys: KeysUnderTest, registry: Registry, prefix: str, key_type: str
) -> None:
    name = f"{prefix}-d"
    created = await create(keys, name, key_type)
    first_public = unb64(created["versions"][0]["public_key"])
    kem = registry.kem(key_type)
    ciphertext, shared = kem.encapsulate(first_public)
    result = await keys.call(
        Crypto.KEY_DECAPSULATE.message_type, {"name": name, "ciphertext": b64(ciphertext)}
    )
    assert (unb64(result["shared_secret"]), result["version"]) == (shared, 1)

    await keys.call(Crypto.KEY_ROTATE.message_type, {"name": name})
    pinned = await keys.call(
        Crypto.KEY_DECAPSULATE.message_type,
        {"name": name, "ciphertext": b64(ciphertext), "version": 1},
    )
    assert unb64(pinned["shared_secret"]) == shared
    latest = await keys.call(
        Crypto.KEY_DECAPSULATE.message_type, {"name": name, "ciphertext": b64(ciphertext)}
    )
    # Implicit rejection: the wrong version's key yields another secret, not an error.
    assert latest["version"] == 2
    assert unb64(latest["shared_secret"]) != shared


async def test_operations_the_key_type_cannot_do(keys: KeysUnderTest, prefix: str) -> None:
    kem, sig = f"{prefix}-kem", f"{prefix}-sig"
    await create(keys, kem, "ML-KEM-768")
    await create(keys, sig, "ML-DSA-65")
    cases = [
        (Crypto.KEY_ENCRYPT.message_type, {"name": sig, "plaintext": "AA"}),
        (Crypto.KEY_DECRYPT.message_type, {"name": sig, "ciphertext": "x0:v1:AAAA"}),
        (Crypto.KEY_DECAPSULATE.message_type, {"name": sig, "ciphertext": "AA"}),
        (Crypto.KEY_SIGN.message_type, {"name": kem, "message": "AA"}),
        (Crypto.KEY_VERIFY.message_type, {"name": kem, "message": "AA", "signature": "AA"}),
    ]
    for message_type, payload in cases:
        error = await fails(keys, message_type, payload)
        assert (error.http_status, error.details["reason"]) == (400, "unsupported_operation")


async def test_lifecycle_statuses(keys: KeysUnderTest, pg_pool: asyncpg.Pool, prefix: str) -> None:
    missing = f"{prefix}-missing"
    for message_type, payload in [
        (Crypto.KEY_READ.message_type, {"name": missing}),
        (Crypto.KEY_ROTATE.message_type, {"name": missing}),
        (Crypto.KEY_CONFIG.message_type, {"name": missing, "deletion_allowed": True}),
        (Crypto.KEY_EXPORT.message_type, {"name": missing}),
        (Crypto.KEY_BACKUP.message_type, {"name": missing}),
        (Crypto.KEY_ENCRYPT.message_type, {"name": missing, "plaintext": "AA"}),
        (Crypto.KEY_SIGN.message_type, {"name": missing, "message": "AA"}),
    ]:
        assert (await fails(keys, message_type, payload)).http_status == 404

    name = f"{prefix}-a"
    created = await create(keys, name, "ML-KEM-512", request_id=f"r-{prefix}")
    assert created["latest_version"] == 1
    assert await create(keys, name, "ML-KEM-512", request_id=f"r-{prefix}") == created
    assert (
        await fails(keys, Crypto.KEY_CREATE.message_type, {"name": name, "type": "ML-KEM-512"})
    ).http_status == 409
    # Without a request id, a redelivered message (same correlation id) is a replay.
    plain = f"{prefix}-b"
    first = await keys.call(
        Crypto.KEY_CREATE.message_type, {"name": plain, "type": "X-Wing"}, correlation_id=prefix
    )
    again = await keys.call(
        Crypto.KEY_CREATE.message_type, {"name": plain, "type": "X-Wing"}, correlation_id=prefix
    )
    assert first == again
    assert prefix + "-a" in (await keys.call(Crypto.KEY_LIST.message_type, {}))["names"]

    assert (await fails(keys, Crypto.KEY_DELETE.message_type, {"name": name})).http_status == 409
    assert (await fails(keys, Crypto.KEY_EXPORT.message_type, {"name": name})).http_status == 409
    bad_period = await fails(
        keys, Crypto.KEY_CONFIG.message_type, {"name": name, "auto_rotate_period_seconds": 30}
    )
    assert bad_period.details["reason"] == "auto_rotate_period_too_short"
    updated = await keys.call(
        Crypto.KEY_CONFIG.message_type, {"name": name, "deletion_allowed": True, "exportable": True}
    )
    assert (updated["deletion_allowed"], updated["exportable"]) == (True, True)
    exported = await keys.call(Crypto.KEY_EXPORT.message_type, {"name": name})
    assert list(exported["secret_keys"]) == ["1"]
    assert len(unb64(exported["secret_keys"]["1"])) == 1632

    backup = await keys.call(Crypto.KEY_BACKUP.message_type, {"name": name})
    assert await keys.call(Crypto.KEY_DELETE.message_type, {"name": name}) == {
        "name": name,
        "deleted": True,
    }
    assert await keys.call(Crypto.KEY_DELETE.message_type, {"name": name}) == {
        "name": name,
        "deleted": False,
    }
    restored = await keys.call(Crypto.KEY_RESTORE.message_type, {"backup": backup["backup"]})
    assert restored["versions"] == created["versions"]
    assert (
        await fails(keys, Crypto.KEY_RESTORE.message_type, {"backup": backup["backup"]})
    ).http_status == 409
    flipped = bytearray(unb64(backup["backup"]))
    flipped[-1] ^= 0x01
    tampered = b64(bytes(flipped))
    assert (
        await fails(keys, Crypto.KEY_RESTORE.message_type, {"backup": tampered, "force": True})
    ).http_status == 400

    count = await pg_pool.fetchval("SELECT count(*) FROM crypto.keys")
    assert keys.sample("x0_crypto_managed_keys") == count
