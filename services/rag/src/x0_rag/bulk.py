"""Bulk ingest for people: a folder or a JSONL file into a collection, through the gateway.

    x0-rag-ingest --collection docs path/to/folder      (each text file is a document)
    x0-rag-ingest --collection docs documents.jsonl     (lines of {"id", "text", "metadata"})

It shows a progress bar and ends with a summary: documents, chunks, throughput and
failures. It resumes: ids already accepted are kept in
``<input>.<collection>.x0-ingest.json`` and skipped when the same command runs again
(``--restart`` forgets them). Documents that could not be delivered (an unknown
collection, a refused batch) are listed as failures and the exit code is 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from tqdm import tqdm

BATCH = 50
TEXT_SUFFIXES = {".txt", ".md", ".rst", ".html", ".py", ".json", ".csv", ""}


def documents_in(source: Path) -> Iterator[dict[str, Any]]:
    """The documents of a folder (one per text file) or of a JSONL file."""
    if source.is_dir():
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            if path.suffix.lower() not in TEXT_SUFFIXES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            if text:
                relative = str(path.relative_to(source))
                yield {"id": relative, "text": text, "metadata": {"path": relative}}
        return
    with source.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                record = json.loads(line)
                yield {
                    "id": str(record.get("id", number)),
                    "text": record["text"],
                    "metadata": record.get("metadata", {}),
                }


class Progress:
    """Ids already accepted by the gateway, kept on disk so a rerun resumes."""

    def __init__(self, path: Path, *, restart: bool) -> None:
        self.path = path
        self.done: set[str] = set()
        if path.exists() and not restart:
            self.done = set(json.loads(path.read_text())["done"])

    def save(self) -> None:
        """Write atomically: a crash mid-write must not lose what was recorded."""
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"done": sorted(self.done)}))
        temporary.replace(self.path)


async def _chunks(client: httpx.AsyncClient, collection: str) -> int:
    response = await client.get(f"/v1/rag/collections/{collection}")
    if response.status_code == 404:
        return 0  # no such collection: every batch fails below and is listed
    response.raise_for_status()
    return int(response.json()["chunks"])


async def ingest(arguments: argparse.Namespace) -> dict[str, Any]:
    """Send every pending document in batches; return the summary."""
    source = Path(arguments.source)
    # Per collection: what one collection accepted is not done for another.
    progress = Progress(
        source.with_name(f"{source.name}.{arguments.collection}.x0-ingest.json"),
        restart=arguments.restart,
    )
    pending = [d for d in documents_in(source) if d["id"] not in progress.done]
    batches = [pending[i : i + BATCH] for i in range(0, len(pending), BATCH)]
    failures: list[str] = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=arguments.gateway, timeout=120) as client:
        chunks_before = await _chunks(client, arguments.collection)
        gate = asyncio.Semaphore(arguments.concurrency)
        bar = tqdm(total=len(pending), unit="doc", desc=arguments.collection)

        async def send(batch: list[dict[str, Any]], last: bool) -> None:
            async with gate:
                response = await client.post(
                    f"/v1/rag/collections/{arguments.collection}/documents",
                    params={"wait": "true"} if last else None,
                    json={"documents": batch},
                )
            if response.status_code in (200, 202):
                progress.done.update(d["id"] for d in batch)
                progress.save()
            else:
                failures.extend(f"{d['id']}: {response.status_code}" for d in batch)
            bar.update(len(batch))

        await asyncio.gather(*(send(b, False) for b in batches[:-1]))
        if batches:
            # The last batch waits until applied, so the chunk count below is final.
            await send(batches[-1], True)
        bar.close()
        chunks_after = await _chunks(client, arguments.collection)
    seconds = time.monotonic() - started
    sent = len(pending) - len(failures)
    return {
        "documents": sent,
        "skipped_as_done": len(progress.done) - sent,
        "chunks": chunks_after - chunks_before,
        "seconds": round(seconds, 2),
        "documents_per_second": round(sent / seconds, 1) if seconds else 0.0,
        "chunks_per_second": round((chunks_after - chunks_before) / seconds, 1) if seconds else 0.0,
        "failures": failures,
    }


def main() -> None:
    """Entry point of ``x0-rag-ingest``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("source", help="a folder of text files or a JSONL file")
    parser.add_argument("--collection", required=True)
    parser.add_argument("--gateway", default="http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--restart", action="store_true", help="forget earlier progress")
    summary = asyncio.run(ingest(parser.parse_args()))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    sys.exit(1 if summary["failures"] else 0)


if __name__ == "__main__":
    main()
