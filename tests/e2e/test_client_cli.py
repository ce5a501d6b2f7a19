"""The ``x0`` command as users run it (the installed entry point, a process of its own,
``X0_URL`` and ``X0_API_KEY`` exported) against a gateway process and the real workers."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from .client_support import as_json, gateway_url, ok, x0

pytestmark = pytest.mark.e2e
__all__ = ["gateway_url"]  # the fixture, used by name


async def test_kem_and_signatures_through_files(gateway_url: str, tmp_path: Path) -> None:
    await ok(
        gateway_url,
        "kem",
        "keypair",
        "-a",
        "X-Wing",
        "--public-out",
        "pk",
        "--secret-out",
        "sk",
        cwd=tmp_path,
    )
    await ok(
        gateway_url,
        "kem",
        "encapsulate",
        "-a",
        "X-Wing",
        "--public-key",
        "pk",
        "--ciphertext-out",
        "ct",
        "--secret-out",
        "ss1",
        cwd=tmp_path,
    )
    await ok(
        gateway_url,
        "kem",
        "decapsulate",
        "-a",
        "X-Wing",
        "--secret-key",
        "sk",
        "--ciphertext",
        "ct",
        "--out",
        "ss2",
        cwd=tmp_path,
    )
    assert (tmp_path / "ss1").read_bytes() == (tmp_path / "ss2").read_bytes()
    assert len((tmp_path / "ss1").read_bytes()) == 32

    await ok(
        gateway_url, "sig", "keypair", "--public-out", "spk", "--secret-out", "ssk", cwd=tmp_path
    )
    (tmp_path / "firmware.bin").write_bytes(os.urandom(4096))
    await ok(
        gateway_url,
        "sig",
        "sign",
        "--secret-key",
        "ssk",
        "--in",
        "firmware.bin",
        "--out",
        "fw.sig",
        "--context",
        "fw-v1",
        cwd=tmp_path,
    )
    verify = ["sig", "verify", "--public-key", "spk", "--signature", "fw.sig", "--context", "fw-v1"]
    assert await ok(gateway_url, *verify, "--in", "firmware.bin", cwd=tmp_path) == b"valid\n"
    tampered = await x0(gateway_url, *verify, "--in", "-", stdin=b"something else", cwd=tmp_path)
    assert (tampered.returncode, tampered.stdout) == (1, b"invalid\n")


async def test_managed_keys_and_exit_codes(gateway_url: str, tmp_path: Path) -> None:
    name = f"e2e-cli-{uuid.uuid4().hex[:8]}"
    created = await as_json(
        gateway_url, "keys", "create", name, "--type", "ML-KEM-768", "--deletion-allowed"
    )
    assert (created["name"], created["latest_version"]) == (name, 1)
    assert name in (await as_json(gateway_url, "keys", "list"))["names"]
    sealed = await ok(gateway_url, "keys", "encrypt", name, stdin=b"\x00secret\xff")
    assert sealed.startswith(b"x0:v1:")
    assert (
        await ok(gateway_url, "keys", "decrypt", name, "--out", "-", stdin=sealed)
        == b"\x00secret\xff"
    )
    assert (await as_json(gateway_url, "keys", "rotate", name))["latest_version"] == 2
    await ok(gateway_url, "keys", "backup", name, "--out", str(tmp_path / "key.backup"))
    copy = f"{name}-copy"
    restored = await as_json(
        gateway_url, "keys", "restore", "--in", str(tmp_path / "key.backup"), "--name", copy
    )
    assert (restored["name"], restored["latest_version"]) == (copy, 2)

    again = await x0(gateway_url, "keys", "create", name, "--type", "ML-KEM-768")
    assert again.returncode == 4, again.stderr
    assert b"409 conflict" in again.stderr
    not_exportable = await x0(gateway_url, "keys", "export", name)
    assert not_exportable.returncode == 4
    missing = await x0(gateway_url, "keys", "show", f"missing-{uuid.uuid4().hex[:8]}")
    assert (missing.returncode, missing.stdout) == (3, b"")
    assert missing.stderr.startswith(b"error: 404 not_found")
    invalid = await x0(gateway_url, "keys", "decrypt", name, stdin=b"x0:v1:not-a-ciphertext")
    assert invalid.returncode == 5, invalid.stderr
    usage = await x0(gateway_url, "keys", "create", name)
    assert usage.returncode == 2
    for key in (name, copy):
        assert (await ok(gateway_url, "keys", "delete", key)).startswith(b"deleted")


async def test_no_gateway_is_exit_7(tmp_path: Path) -> None:
    finished = await x0("http://127.0.0.1:9", "keys", "list")
    assert finished.returncode == 7
    assert b"ConnectError" in finished.stderr


async def test_a_missing_or_wrong_api_key_is_exit_6(gateway_url: str) -> None:
    for key in ("", "x0_live_not-a-key"):
        finished = await x0(gateway_url, "keys", "list", environment={"X0_API_KEY": key})
        assert finished.returncode == 6, (key, finished.stderr)
        assert finished.stderr.startswith(b"error: 401 unauthenticated")


async def test_rag_collections_ingest_and_search(gateway_url: str, tmp_path: Path) -> None:
    name = f"e2e-cli-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "weather.txt").write_text("The weather is lovely and sunny today.", encoding="utf-8")
    (folder / "kafka.md").write_text(
        "Kafka keeps the messages of a partition in order.", encoding="utf-8"
    )
    created = await as_json(
        gateway_url, "rag", "collections", "create", name, "--chunk-size", "256"
    )
    assert created["chunk_size"] == 256
    try:
        summary = await as_json(gateway_url, "rag", "ingest", str(folder), "--collection", name)
        assert (summary["documents"], summary["failures"]) == (2, [])
        again = await as_json(gateway_url, "rag", "ingest", str(folder), "-c", name)
        assert (again["documents"], again["skipped_as_done"]) == (0, 2)
        hits = (await as_json(gateway_url, "rag", "search", name, "sunny weather", "-k", "1"))[
            "hits"
        ]
        assert [h["document_id"] for h in hits] == ["weather.txt"]
        table = (
            await ok(gateway_url, "rag", "search", name, "partition", "--mode", "keyword")
        ).decode()
        assert "kafka.md" in table
        shown = await as_json(gateway_url, "rag", "collections", "show", name)
        assert (shown["documents"], shown["chunks"]) == (2, 2)
        assert name in (await ok(gateway_url, "rag", "collections", "list")).decode()
    finally:
        await ok(gateway_url, "rag", "collections", "delete", name)
    assert (await x0(gateway_url, "rag", "collections", "show", name)).returncode == 3


async def test_telemetry_send_then_read(gateway_url: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    node, mesh = f"{run}-n", f"mesh-{run}"
    assert (await as_json(gateway_url, "telemetry", "send", "--heartbeat", node, "--mesh", mesh))[
        "accepted"
    ] == 1
    deadline = time.monotonic() + 30
    while (found := await x0(gateway_url, "telemetry", "node", node, "--json")).returncode == 3:
        assert time.monotonic() < deadline, "the heartbeat never became the node's state"
        await asyncio.sleep(0.5)
    assert found.returncode == 0, found.stderr
    state = json.loads(found.stdout)
    assert (state["status"], state["mesh_id"], state["software_version"]) == ("up", mesh, "x0-cli")
    assert [
        n["node_id"]
        for n in (await as_json(gateway_url, "telemetry", "nodes", "--mesh", mesh))["nodes"]
    ] == [node]
    assert (await as_json(gateway_url, "telemetry", "topology", mesh))["nodes"][0][
        "node_id"
    ] == node
    history = await as_json(gateway_url, "telemetry", "history", node, "--step", "60")
    assert (history["node_id"], history["step_seconds"]) == (node, 60)
    table = (await ok(gateway_url, "telemetry", "nodes", "--mesh", mesh)).decode()
    assert node in table
