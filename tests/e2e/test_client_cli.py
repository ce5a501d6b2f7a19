"""The ``x0`` command as users run it (the installed entry point, a process of its own,
``X0_URL`` naming a gateway process) against the real workers; and its progress bar
drawn in a pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from x0_common.testing.processes import service_process
from x0_common.testing.stack import StackEndpoints

pytestmark = pytest.mark.e2e

X0 = str(Path(sys.executable).with_name("x0"))


@pytest.fixture(scope="module")
def gateway_url(
    stack: StackEndpoints, crypto_worker: int, rag_worker: int, telemetry_worker: int
) -> Iterator[str]:
    """A gateway process in front of the e2e workers; yields its base URL."""
    environment = {
        **stack.environment(),
        "X0_GATEWAY_REPLICA_ID": f"e2e-cli-{uuid.uuid4().hex[:8]}",
        "X0_GATEWAY_REQUEST_TIMEOUT_SECONDS": "30",
    }
    with service_process(
        "x0_gateway", environment=environment, port_variable="X0_GATEWAY_PORT"
    ) as port:
        yield f"http://127.0.0.1:{port}"


def x0(
    url: str, *args: str, stdin: bytes = b"", cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """Run ``x0 args...`` with ``X0_URL=url``."""
    return subprocess.run(
        [X0, *args],
        input=stdin,
        capture_output=True,
        cwd=cwd,
        env={**os.environ, "X0_URL": url, "X0_MAX_ATTEMPTS": "2"},
        timeout=120,
        check=False,
    )


def ok(url: str, *args: str, stdin: bytes = b"", cwd: Path | None = None) -> bytes:
    finished = x0(url, *args, stdin=stdin, cwd=cwd)
    assert finished.returncode == 0, (args, finished.stderr.decode())
    return finished.stdout


def as_json(url: str, *args: str) -> Any:
    return json.loads(ok(url, *args, "--json"))


def test_kem_and_signatures_through_files(gateway_url: str, tmp_path: Path) -> None:
    ok(
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
    ok(
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
    ok(
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

    ok(gateway_url, "sig", "keypair", "--public-out", "spk", "--secret-out", "ssk", cwd=tmp_path)
    (tmp_path / "firmware.bin").write_bytes(os.urandom(4096))
    ok(
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
    assert ok(gateway_url, *verify, "--in", "firmware.bin", cwd=tmp_path) == b"valid\n"
    tampered = x0(gateway_url, *verify, "--in", "-", stdin=b"something else", cwd=tmp_path)
    assert (tampered.returncode, tampered.stdout) == (1, b"invalid\n")


def test_managed_keys_and_exit_codes(gateway_url: str, tmp_path: Path) -> None:
    name = f"e2e-cli-{uuid.uuid4().hex[:8]}"
    created = as_json(
        gateway_url, "keys", "create", name, "--type", "ML-KEM-768", "--deletion-allowed"
    )
    assert (created["name"], created["latest_version"]) == (name, 1)
    assert name in as_json(gateway_url, "keys", "list")["names"]
    sealed = ok(gateway_url, "keys", "encrypt", name, stdin=b"\x00secret\xff")
    assert sealed.startswith(b"x0:v1:")
    assert ok(gateway_url, "keys", "decrypt", name, "--out", "-", stdin=sealed) == b"\x00secret\xff"
    assert as_json(gateway_url, "keys", "rotate", name)["latest_version"] == 2
    ok(gateway_url, "keys", "backup", name, "--out", str(tmp_path / "key.backup"))
    copy = f"{name}-copy"
    restored = as_json(
        gateway_url, "keys", "restore", "--in", str(tmp_path / "key.backup"), "--name", copy
    )
    assert (restored["name"], restored["latest_version"]) == (copy, 2)

    again = x0(gateway_url, "keys", "create", name, "--type", "ML-KEM-768")
    assert again.returncode == 4, again.stderr
    assert b"409 conflict" in again.stderr
    not_exportable = x0(gateway_url, "keys", "export", name)
    assert not_exportable.returncode == 4
    missing = x0(gateway_url, "keys", "show", f"missing-{uuid.uuid4().hex[:8]}")
    assert (missing.returncode, missing.stdout) == (3, b"")
    assert missing.stderr.startswith(b"error: 404 not_found")
    invalid = x0(gateway_url, "keys", "decrypt", name, stdin=b"x0:v1:not-a-ciphertext")
    assert invalid.returncode == 5, invalid.stderr
    usage = x0(gateway_url, "keys", "create", name)
    assert usage.returncode == 2
    for key in (name, copy):
        assert ok(gateway_url, "keys", "delete", key).startswith(b"deleted")


def test_no_gateway_is_exit_7(tmp_path: Path) -> None:
    finished = x0("http://127.0.0.1:9", "keys", "list")
    assert finished.returncode == 7
    assert b"ConnectError" in finished.stderr


def test_rag_collections_ingest_and_search(gateway_url: str, tmp_path: Path) -> None:
    name = f"e2e-cli-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "weather.txt").write_text("The weather is lovely and sunny today.", encoding="utf-8")
    (folder / "kafka.md").write_text(
        "Kafka keeps the messages of a partition in order.", encoding="utf-8"
    )
    created = as_json(gateway_url, "rag", "collections", "create", name, "--chunk-size", "256")
    assert created["chunk_size"] == 256
    try:
        summary = as_json(gateway_url, "rag", "ingest", str(folder), "--collection", name)
        assert (summary["documents"], summary["failures"]) == (2, [])
        again = as_json(gateway_url, "rag", "ingest", str(folder), "-c", name)
        assert (again["documents"], again["skipped_as_done"]) == (0, 2)
        hits = as_json(gateway_url, "rag", "search", name, "sunny weather", "-k", "1")["hits"]
        assert [h["document_id"] for h in hits] == ["weather.txt"]
        table = ok(gateway_url, "rag", "search", name, "partition", "--mode", "keyword").decode()
        assert "kafka.md" in table
        shown = as_json(gateway_url, "rag", "collections", "show", name)
        assert (shown["documents"], shown["chunks"]) == (2, 2)
        assert name in ok(gateway_url, "rag", "collections", "list").decode()
    finally:
        ok(gateway_url, "rag", "collections", "delete", name)
    assert x0(gateway_url, "rag", "collections", "show", name).returncode == 3


def test_telemetry_send_then_read(gateway_url: str, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:8]
    node, mesh = f"{run}-n", f"mesh-{run}"
    assert (
        as_json(gateway_url, "telemetry", "send", "--heartbeat", node, "--mesh", mesh)["accepted"]
        == 1
    )
    deadline = time.monotonic() + 30
    while (found := x0(gateway_url, "telemetry", "node", node, "--json")).returncode == 3:
        assert time.monotonic() < deadline, "the heartbeat never became the node's state"
        time.sleep(0.5)
    assert found.returncode == 0, found.stderr
    state = json.loads(found.stdout)
    assert (state["status"], state["mesh_id"], state["software_version"]) == ("up", mesh, "x0-cli")
    assert [
        n["node_id"] for n in as_json(gateway_url, "telemetry", "nodes", "--mesh", mesh)["nodes"]
    ] == [node]
    assert as_json(gateway_url, "telemetry", "topology", mesh)["nodes"][0]["node_id"] == node
    history = as_json(gateway_url, "telemetry", "history", node, "--step", "60")
    assert (history["node_id"], history["step_seconds"]) == (node, 60)
    table = ok(gateway_url, "telemetry", "nodes", "--mesh", mesh).decode()
    assert node in table


def test_the_ingest_progress_bar_renders_in_a_terminal(gateway_url: str, tmp_path: Path) -> None:
    name = f"e2e-pty-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": f"d{i}", "text": f"Document number {i} about partitions."})
        for i in range(120)
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ok(gateway_url, "rag", "collections", "create", name)
    try:
        code, screen = in_terminal(gateway_url, "rag", "ingest", str(source), "-c", name)
        assert code == 0, screen
        assert "\x1b[" in screen, "a terminal gets ANSI cursor and colour codes"
        assert "━" in screen, "the bar is drawn"
        assert "120/120" in screen, "and ends full"
        assert "documents_per_second" not in screen, "a human summary, not JSON"
    finally:
        ok(gateway_url, "rag", "collections", "delete", name)


def in_terminal(url: str, *args: str, timeout: float = 120.0) -> tuple[int, str]:
    """Run ``x0 args...`` with a pseudo-terminal as stdin, stdout and stderr."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [X0, *args],
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "X0_URL": url, "TERM": "xterm-256color", "COLUMNS": "100"},
        close_fds=True,
    )
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            chunks.append(chunk)
        elif process.poll() is not None:
            break
    os.close(controller)
    code = process.wait(timeout=10)
    return code, b"".join(chunks).decode("utf-8", errors="replace")
