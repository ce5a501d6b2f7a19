"""The ``x0`` command in process, against the mock gateway: output, files, exit codes."""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer

from x0_client.cli import app, run
from x0_client.testing import MockGateway, Problem
from x0_common.errors import Conflict, InvalidInput, NotFound
from x0_common.events import crypto as c
from x0_common.events import rag as r
from x0_common.events import telemetry as t

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _one_attempt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X0_MAX_ATTEMPTS", "1")
    monkeypatch.delenv("X0_URL", raising=False)


def stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command's path."""
    if hasattr(group, "commands"):
        return [p for name, sub in group.commands.items() for p in commands(sub, (*path, name))]
    return [path]


def test_every_command_has_help_with_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    leaves = commands(typer.main.get_command(app))
    assert len(leaves) == 29
    for path in leaves:
        assert run([*path, "--help"]) == 0, path
        shown = capsys.readouterr().out
        assert "Example" in shown, path
        assert f"x0 {' '.join(path)}" in shown, path


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["keys", "nope"]) == 2
    assert run(["keys", "create", "k", "--type", "RSA-2048"]) == 2
    assert "RSA-2048" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (NotFound("no key k"), 3),
        (Conflict("exists"), 4),
        (InvalidInput("bad key length"), 5),
        (Problem(422, "validation", "not valid"), 5),
        (Problem(401, "unauthorized", "who are you"), 6),
        (Problem(403, "forbidden", "not yours"), 6),
        (Problem(503, "unavailable", "later"), 7),
        (Problem(504, "deadline_exceeded", "slow"), 7),
        (Problem(500, "internal", "bug"), 1),
    ],
)
def test_errors_go_to_stderr_with_the_exit_code_of_their_class(
    error: Exception, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(_: object) -> None:
        raise error

    assert run(["keys", "show", "k"], transport=MockGateway(handlers={"read_key": refuse})) == code
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")


def test_input_refused_locally_and_no_connection(capsys: pytest.CaptureFixture[str]) -> None:
    gateway = MockGateway()
    assert run(["telemetry", "node", "not a node!"], transport=gateway) == 5
    assert gateway.calls == []
    assert "node_id" in capsys.readouterr().err
    assert run(["--url", "http://127.0.0.1:9", "keys", "list"]) == 7
    assert "ConnectError" in capsys.readouterr().err


def test_kem_round_trip_through_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gateway = MockGateway()
    gateway.handlers["kem_keypair"] = lambda q: c.KeypairResult(
        algorithm=q.algorithm, public_key=b"\x01pk", secret_key=b"\x02sk"
    )
    gateway.handlers["kem_decapsulate"] = lambda q: c.DecapsulateResult(
        shared_secret=q.secret_key + q.ciphertext
    )
    pk, sk, ct, ss = (tmp_path / name for name in ("pk", "sk", "ct", "ss"))
    assert (
        run(
            ["kem", "keypair", "-a", "X-Wing", "--public-out", str(pk), "--secret-out", str(sk)],
            transport=gateway,
        )
        == 0
    )
    assert (pk.read_bytes(), sk.read_bytes()) == (b"\x01pk", b"\x02sk")
    ct.write_bytes(b"\xff")
    args = ["kem", "decapsulate", "-a", "X-Wing", "--secret-key", str(sk), "--ciphertext", str(ct)]
    assert run([*args, "--out", str(ss)], transport=gateway) == 0
    assert ss.read_bytes() == b"\x02sk\xff"
    capsys.readouterr()
    assert run([*args, "--json"], transport=gateway) == 0
    assert json.loads(capsys.readouterr().out) == {"shared_secret": "AnNr_w"}
    assert gateway.calls[0].request == c.KemKeypairRequest(algorithm="X-Wing")


def test_encrypt_from_stdin_and_decrypt_to_stdout(
    monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    gateway = MockGateway()
    gateway.handlers["key_encrypt"] = lambda q: c.EncryptResult(
        ciphertext="x0:v1:" + q.plaintext.hex(), version=1
    )
    gateway.handlers["key_decrypt"] = lambda q: c.DecryptResult(
        plaintext=bytes.fromhex(q.ciphertext[6:])
    )
    stdin(monkeypatch, b"\x00hello\n")
    assert run(["keys", "encrypt", "node-a"], transport=gateway) == 0
    sealed = capsysbinary.readouterr().out
    assert sealed == b"x0:v1:0068656c6c6f0a\n"
    stdin(monkeypatch, sealed)
    assert run(["keys", "decrypt", "node-a", "--out", "-"], transport=gateway) == 0
    assert capsysbinary.readouterr().out == b"\x00hello\n"
    stdin(monkeypatch, sealed)
    assert run(["keys", "decrypt", "node-a"], transport=gateway) == 0
    assert capsysbinary.readouterr().out == b"AGhlbGxvCg\n"


def test_a_signature_that_does_not_verify_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = MockGateway(
        handlers={"key_verify": lambda q: c.VerifyResult(valid=q.context == b"v1")}
    )
    (tmp_path / "m").write_bytes(b"msg")
    (tmp_path / "s").write_bytes(b"sig")
    args = ["keys", "verify", "signer", "--in", str(tmp_path / "m"), "-s", str(tmp_path / "s")]
    assert run([*args, "--context", "v1"], transport=gateway) == 0
    assert capsys.readouterr().out == "valid\n"
    assert run(args, transport=gateway) == 1
    assert capsys.readouterr().out == "invalid\n"


def test_rag_search_prints_a_table_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    hit = r.SearchHit(
        chunk_id=3,
        document_id="doc-1",
        score=0.875,
        text="The weather is lovely.",
        start=0,
        end=22,
        metadata={},
    )
    gateway = MockGateway(handlers={"search": lambda q: r.SearchResult(hits=[hit], mode=q.mode)})
    assert (
        run(
            ["rag", "search", "notes", "weather", "-k", "3", "--filter", '{"lang": "en"}'],
            transport=gateway,
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "doc-1" in table
    assert "0.8750" in table
    assert gateway.calls[0].request == r.SearchRequest(
        collection="notes", query="weather", k=3, filter={"lang": "en"}
    )
    assert (
        run(["rag", "search", "notes", "weather", "--mode", "keyword", "--json"], transport=gateway)
        == 0
    )
    assert json.loads(capsys.readouterr().out)["mode"] == "keyword"


def test_telemetry_send_and_history_window(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = MockGateway()
    gateway.handlers["publish_events"] = lambda q: t.EventsAccepted(accepted=len(q.events))
    gateway.handlers["node_history"] = lambda q: t.History(
        node_id=q.node_id, step_seconds=q.step_seconds, source="rollup", points=[]
    )
    events = tmp_path / "events.jsonl"
    line = {
        "kind": "heartbeat",
        "node_id": "n1",
        "mesh_id": "lab",
        "timestamp": "2026-11-27T19:00:00Z",
        "software_version": "1",
    }
    events.write_text(json.dumps(line) + "\n\n" + json.dumps({**line, "node_id": "n2"}) + "\n")
    assert run(["telemetry", "send", str(events)], transport=gateway) == 0
    assert capsys.readouterr().out == "accepted 2 events\n"
    assert (
        run(
            ["telemetry", "send", "--heartbeat", "n3", "--mesh", "lab", "--json"], transport=gateway
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out) == {"accepted": 1}
    assert run(["telemetry", "send"], transport=gateway) == 2
    assert run(["telemetry", "history", "n1", "--step", "300"], transport=gateway) == 0
    params = gateway.calls[-1].http.url.params
    start, end = (datetime.fromisoformat(params[name]) for name in ("from", "to"))
    assert (end - start, params["step"]) == (timedelta(hours=1), "300")
