"""Bulk ingest: a folder of text files or a JSONL file into a collection, resumably.

Each text file of a folder is a document (its path relative to the folder is its id
and ``metadata.path``); each line of a JSONL file is ``{"id", "text", "metadata"}``
(``id`` defaults to the line number). Documents go in batches of ``BATCH`` through
``upsert_documents``, ``concurrency`` batches at a time; the last batch waits until
applied, so the summary's chunk count is final. Ids already accepted are kept in
``<input>.<collection>.x0-ingest.json`` and skipped when the same ingest runs again
(``restart`` forgets them). Batches that fail (an unknown collection, a refused
batch) are listed as ``"<id>: <status>"`` failures and not recorded as done.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from x0_client.async_client import AsyncClient
from x0_client.errors import DeadlineExceededError, NotFoundError, ProblemError, TransportError
from x0_common.events import rag

BATCH = 50
# How long the summary waits for the last batch to be searchable.
APPLY_TIMEOUT = 120.0
TEXT_SUFFIXES = frozenset({".txt", ".md", ".rst", ".html", ".py", ".json", ".csv", ""})


def documents_in(source: Path) -> Iterator[rag.Document]:
    """The documents of a folder (one per non-empty text file) or of a JSONL file."""
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            if path.suffix.lower() not in TEXT_SUFFIXES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                relative = path.relative_to(source).as_posix()
                yield rag.Document(id=relative, text=text, metadata={"path": relative})
        return
    with source.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                record = json.loads(line)
                yield rag.Document(
                    id=str(record.get("id", number)),
                    text=record["text"],
                    metadata=record.get("metadata", {}),
                )


class Resume:
    """Ids already accepted, kept on disk so that a rerun resumes."""

    def __init__(self, path: Path, *, restart: bool) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists() and not restart:
            self.done = set(json.loads(path.read_text(encoding="utf-8"))["done"])

    @classmethod
    def beside(cls, source: Path, collection: str, *, restart: bool) -> Resume:
        """The record of ``source`` for ``collection`` (one per pair: what one collection
        accepted is not done for another)."""
        return cls(source.with_name(f"{source.name}.{collection}.x0-ingest.json"), restart=restart)

    def save(self) -> None:
        """Write atomically: a crash mid-write must not lose what was recorded."""
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"done": sorted(self.done)}), encoding="utf-8")
        temporary.replace(self.path)


@dataclass
class Summary:
    """What an ingest did; ``as_dict()`` is the JSON ``x0 rag ingest --json`` prints."""

    documents: int = 0
    skipped_as_done: int = 0
    chunks: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The summary with throughput figures."""
        per_second = (lambda n: round(n / self.seconds, 1)) if self.seconds else (lambda _: 0.0)
        return {
            "documents": self.documents,
            "skipped_as_done": self.skipped_as_done,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 2),
            "documents_per_second": per_second(self.documents),
            "chunks_per_second": per_second(self.chunks),
            "failures": self.failures,
        }


async def _chunks(client: AsyncClient, collection: str) -> int:
    try:
        return (await client.get_collection(name=collection)).chunks
    except NotFoundError:
        return 0  # every batch fails below and is listed


async def until_applied(
    client: AsyncClient, collection: str, version: str, *, timeout: float = APPLY_TIMEOUT
) -> None:
    """Return once a replica has applied ``version`` (ingests apply in order, so every
    earlier batch too), or after ``timeout`` seconds.

    ``wait=true`` gives up after the replica's own bound and answers 202 all the same,
    so a keyword search with ``min_version`` (cheap: nothing to embed) confirms it.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            await client.search(
                collection=collection, query="x", k=1, mode="keyword", min_version=version
            )
        except DeadlineExceededError:
            if time.monotonic() < deadline:
                continue
        return


def _failure(error: Exception) -> str:
    return str(error.status) if isinstance(error, ProblemError) else type(error).__name__


async def ingest(
    client: AsyncClient,
    source: Path,
    collection: str,
    *,
    concurrency: int = 4,
    restart: bool = False,
    on_start: Callable[[int], None] = lambda _total: None,
    on_batch: Callable[[int], None] = lambda _documents: None,
) -> Summary:
    """Send every pending document of ``source``; ``on_start(total)`` and
    ``on_batch(documents)`` report progress."""
    resume = Resume.beside(source, collection, restart=restart)
    documents = list(documents_in(source))
    pending = [d for d in documents if d.id not in resume.done]
    batches = [pending[i : i + BATCH] for i in range(0, len(pending), BATCH)]
    summary = Summary()
    started = time.monotonic()
    chunks_before = await _chunks(client, collection)
    gate = asyncio.Semaphore(concurrency)
    on_start(len(pending))

    async def send(batch: list[rag.Document], *, last: bool) -> rag.IngestAccepted | None:
        try:
            async with gate:
                accepted = await client.upsert_documents(
                    collection=collection, documents=batch, wait=last
                )
        except (ProblemError, TransportError) as error:
            summary.failures.extend(f"{d.id}: {_failure(error)}" for d in batch)
            return None
        finally:
            on_batch(len(batch))
        resume.done.update(d.id for d in batch)
        resume.save()
        return accepted

    await asyncio.gather(*(send(b, last=False) for b in batches[:-1]))
    last = await send(batches[-1], last=True) if batches else None
    if last is not None:
        await until_applied(client, collection, last.version)
    summary.chunks = await _chunks(client, collection) - chunks_before
    summary.seconds = time.monotonic() - started
    summary.documents = len(pending) - len(summary.failures)
    summary.skipped_as_done = len(documents) - len(pending)
    return summary
