"""``x0 rag ingest`` (progress bar, resumable) and its old name ``x0-rag-ingest``.

Both run :func:`x0_client.ingest.ingest`. ``x0-rag-ingest`` keeps the options and
output of the command x0-rag used to ship (``SOURCE --collection C --gateway URL``,
the JSON summary on stdout, exit code 1 when a document failed).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from x0_client.async_client import AsyncClient
from x0_client.cli.output import JsonOption, print_json, print_table, stderr
from x0_client.cli.state import state
from x0_client.ingest import Summary, ingest
from x0_client.settings import ClientSettings

Source = Annotated[
    Path,
    typer.Argument(help="A folder of text files or a JSONL file.", exists=True, show_default=False),
]
Collection = Annotated[str, typer.Option("--collection", "-c", help="The collection to fill.")]
Concurrency = Annotated[int, typer.Option(min=1, max=64, help="Batches in flight at once.")]
_LABELS = {
    "documents": "documents sent",
    "skipped_as_done": "skipped (sent before)",
    "chunks": "chunks added",
    "seconds": "seconds",
    "documents_per_second": "documents/s",
    "chunks_per_second": "chunks/s",
}
Restart = Annotated[
    bool, typer.Option("--restart", help="Forget earlier progress and send everything.")
]


def run_ingest(
    client: AsyncClient, source: Path, collection: str, *, concurrency: int, restart: bool
) -> Summary:
    """Ingest with a progress bar on stderr (drawn live on a terminal)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("docs"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=stderr()) as progress:
        task = progress.add_task(collection, total=None)

        async def go() -> Summary:
            async with client:
                return await ingest(
                    client,
                    source,
                    collection,
                    concurrency=concurrency,
                    restart=restart,
                    on_start=lambda total: progress.update(task, total=total),
                    on_batch=lambda sent: progress.advance(task, sent),
                )

        return asyncio.run(go())


def ingest_command(
    context: typer.Context,
    *,
    source: Source,
    collection: Collection,
    concurrency: Concurrency = 4,
    restart: Restart = False,
    as_json: JsonOption = False,
) -> None:
    """Ingest a folder of text files or a JSONL file, with a progress bar; resumable.

    Each text file of a folder is a document (its relative path is its id); each JSONL
    line is {"id", "text", "metadata"}. Ids already accepted are kept in
    <input>.<collection>.x0-ingest.json and skipped when the same command runs again.
    Exit code 1 when a document could not be delivered.

    Examples:

        x0 rag ingest docs/ --collection notes

        x0 rag ingest faq.jsonl -c faq --concurrency 8 --json
    """
    summary = run_ingest(
        state(context).async_client(), source, collection, concurrency=concurrency, restart=restart
    )
    figures = summary.as_dict()
    if as_json:
        print_json(figures)
    else:
        failures = figures.pop("failures")
        print_table(("", collection), ((_LABELS[k], v) for k, v in figures.items()))
        for failure in failures:
            stderr().print(f"failed: {failure}", markup=False)
    if summary.failures:
        raise typer.Exit(1)


legacy = typer.Typer(add_completion=False)


@legacy.command()
def _legacy(
    *,
    source: Source,
    collection: Collection,
    gateway: Annotated[str | None, typer.Option(help="Gateway URL (default: X0_URL).")] = None,
    concurrency: Concurrency = 4,
    restart: Restart = False,
) -> None:
    """Bulk ingest into a RAG collection (the same as `x0 rag ingest --json`)."""
    client = AsyncClient(gateway, settings=ClientSettings())
    summary = run_ingest(client, source, collection, concurrency=concurrency, restart=restart)
    print_json(summary.as_dict())
    if summary.failures:
        raise typer.Exit(1)


def legacy_main() -> None:
    """Entry point of ``x0-rag-ingest``."""
    legacy(prog_name=Path(sys.argv[0]).name)
