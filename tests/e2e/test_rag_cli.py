"""``x0-rag-ingest`` (bulk ingest for people) against a real gateway process and RAG worker.

The command is run as users run it: the installed entry point, in a process of its
own, reading a folder of text files or a JSONL file. Its JSON summary is checked
against what the collection holds afterwards, a second run must resume (send
nothing), and documents it could not deliver must be listed with exit code 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from x0_common.testing.processes import service_process
from x0_common.testing.stack import StackEndpoints

pytestmark = pytest.mark.e2e

COMMAND = Path(sys.executable).with_name("x0-rag-ingest")
PARAGRAPH = (
    "Kafka keeps each partition in order; a consumer group shares the partitions of a "
    "topic among its members, and a rebalance moves them when a member joins or leaves. "
)


@pytest.fixture(scope="module")
def gateway_url(
    stack: StackEndpoints,
    rag_groups: Callable[[str], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
    admin_api_key: str,
) -> Iterator[str]:
    """A RAG worker and a gateway, both real processes; yields the gateway's base URL."""
    run = uuid.uuid4().hex[:8]
    rag = {
        **stack.environment(),
        **rag_groups("cli"),
        "X0_RAG_REPLICA_ID": f"e2e-cli-{run}",
        "X0_RAG_SNAPSHOT_DIR": str(tmp_path_factory.mktemp("rag-snapshots")),
    }
    gateway = {
        **stack.environment(),
        "X0_GATEWAY_REPLICA_ID": f"e2e-cli-{run}",
        "X0_GATEWAY_REQUEST_TIMEOUT_SECONDS": "60",
        "X0_GATEWAY_METRICS_PORT": "0",
    }
    with (
        pytest.MonkeyPatch.context() as environment,
        service_process("x0_rag", environment=rag, port_variable="X0_RAG_PORT"),
        service_process("x0_gateway", environment=gateway, port_variable="X0_GATEWAY_PORT") as port,
    ):
        # As users run the command: `export X0_API_KEY=...` (the ingest process inherits it).
        environment.setenv("X0_API_KEY", admin_api_key)
        yield f"http://127.0.0.1:{port}"


def auth() -> dict[str, str]:
    """The header of the test's own calls to the gateway (the key gateway_url exports)."""
    return {"Authorization": f"Bearer {os.environ['X0_API_KEY']}"}


@pytest.fixture
def new_collection(gateway_url: str) -> Iterator[Callable[[], str]]:
    """Creates empty collections; deletes them afterwards."""
    names: list[str] = []

    def create() -> str:
        name = f"e2e-cli-{uuid.uuid4().hex[:10]}"
        created = httpx.post(
            f"{gateway_url}/v1/rag/collections", json={"name": name}, headers=auth(), timeout=60
        )
        assert created.status_code == 201, created.text
        names.append(name)
        return name

    yield create
    for name in names:
        httpx.delete(f"{gateway_url}/v1/rag/collections/{name}", headers=auth(), timeout=60)


def ingest(gateway_url: str, collection: str, source: Path) -> tuple[int, dict[str, Any]]:
    """Run ``x0-rag-ingest``; its exit code and the JSON summary it printed."""
    finished = subprocess.run(
        [str(COMMAND), str(source), "--collection", collection, "--gateway", gateway_url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.stdout, finished.stderr
    return finished.returncode, json.loads(finished.stdout)


def stats(gateway_url: str, collection: str) -> dict[str, Any]:
    response = httpx.get(
        f"{gateway_url}/v1/rag/collections/{collection}", headers=auth(), timeout=60
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def write_folder(folder: Path) -> int:
    """60 text documents (10 of them in a subfolder and several chunks long), plus files
    the command must pass over: an empty one and a binary one. Returns the documents."""
    (folder / "guides").mkdir(parents=True)
    for i in range(50):
        (folder / f"note-{i:02d}.txt").write_text(f"Note {i}. {PARAGRAPH}", encoding="utf-8")
    for i in range(10):
        (folder / "guides" / f"guide-{i}.md").write_text(
            f"# Guide {i}\n\n" + PARAGRAPH * 8, encoding="utf-8"
        )
    (folder / "empty.txt").write_text("   \n", encoding="utf-8")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    return 60


def test_a_folder_is_ingested_and_a_second_run_resumes(
    gateway_url: str, new_collection: Callable[[], str], tmp_path: Path
) -> None:
    collection = new_collection()
    folder = tmp_path / "docs"
    documents = write_folder(folder)

    code, summary = ingest(gateway_url, collection, folder)
    assert code == 0, summary
    assert summary["failures"] == []
    assert (summary["documents"], summary["skipped_as_done"]) == (documents, 0)
    held = stats(gateway_url, collection)
    assert held["documents"] == documents
    # The summary's chunk count is what the collection holds (the guides are several
    # chunks each, so there are more chunks than documents).
    assert summary["chunks"] == held["chunks"] > documents

    code, again = ingest(gateway_url, collection, folder)
    assert code == 0, again
    assert (again["documents"], again["skipped_as_done"], again["chunks"]) == (0, documents, 0)
    assert again["failures"] == []
    assert stats(gateway_url, collection) == held

    # Files added since: only those are sent.
    (folder / "note-new.txt").write_text(f"A late note. {PARAGRAPH}", encoding="utf-8")
    code, grown = ingest(gateway_url, collection, folder)
    assert code == 0, grown
    assert (grown["documents"], grown["skipped_as_done"]) == (1, documents)
    assert stats(gateway_url, collection)["documents"] == documents + 1

    # What was sent to one collection is not "done" for another.
    other = new_collection()
    code, elsewhere = ingest(gateway_url, other, folder)
    assert code == 0, elsewhere
    assert (elsewhere["documents"], elsewhere["skipped_as_done"]) == (documents + 1, 0)
    assert stats(gateway_url, other)["documents"] == documents + 1


def test_a_jsonl_file_keeps_ids_and_metadata_and_resumes(
    gateway_url: str, new_collection: Callable[[], str], tmp_path: Path
) -> None:
    collection = new_collection()
    source = tmp_path / "faq.jsonl"
    records = [
        {"id": f"faq-{i}", "text": f"Q{i}: {PARAGRAPH}", "metadata": {"kind": "faq", "i": i}}
        for i in range(40)
    ]
    lines = [json.dumps(record) for record in records]
    lines.insert(20, "")  # blank lines are skipped
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")

    code, summary = ingest(gateway_url, collection, source)
    assert code == 0, summary
    assert (summary["documents"], summary["failures"]) == (40, [])
    assert summary["chunks"] == stats(gateway_url, collection)["chunks"] > 0
    document = httpx.get(
        f"{gateway_url}/v1/rag/collections/{collection}/documents/faq-7", headers=auth()
    )
    assert document.status_code == 200, document.text
    assert document.json()["metadata"] == {"kind": "faq", "i": 7}
    assert document.json()["text"] == records[7]["text"]

    code, again = ingest(gateway_url, collection, source)
    assert code == 0, again
    assert (again["documents"], again["skipped_as_done"], again["failures"]) == (0, 40, [])


def test_documents_that_cannot_be_delivered_are_listed_and_exit_1(
    gateway_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "lost.jsonl"
    source.write_text(
        "\n".join(json.dumps({"id": f"lost-{i}", "text": f"Text {i}"}) for i in range(3)) + "\n",
        encoding="utf-8",
    )
    missing = f"no-such-{uuid.uuid4().hex[:8]}"
    code, summary = ingest(gateway_url, missing, source)
    assert code == 1
    assert summary["documents"] == 0
    assert sorted(summary["failures"]) == ["lost-0: 404", "lost-1: 404", "lost-2: 404"]
    # Nothing was recorded as done: once the collection exists, a rerun sends them all.
    created = httpx.post(
        f"{gateway_url}/v1/rag/collections", json={"name": missing}, headers=auth(), timeout=60
    )
    assert created.status_code == 201, created.text
    try:
        code, retried = ingest(gateway_url, missing, source)
        assert (code, retried["documents"], retried["failures"]) == (0, 3, [])
    finally:
        httpx.delete(f"{gateway_url}/v1/rag/collections/{missing}", headers=auth(), timeout=60)
