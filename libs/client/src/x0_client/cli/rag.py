"""``x0 rag``: collections, bulk ingest and search."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from x0_client.cli.ingest import ingest_command
from x0_client.cli.output import (
    JsonOption,
    print_fields,
    print_json,
    print_line,
    print_table,
)
from x0_client.cli.state import state
from x0_common.events import rag

app = typer.Typer(help="Retrieval: collections, bulk ingest, search.", no_args_is_help=True)
collections = typer.Typer(help="Create, list, show and delete collections.", no_args_is_help=True)
app.add_typer(collections, name="collections")
app.command("ingest")(ingest_command)

Name = Annotated[str, typer.Argument(help="The collection's name.", show_default=False)]
ChunkSize = Annotated[int | None, typer.Option(help="Characters per chunk (default 512).")]
ChunkOverlap = Annotated[int | None, typer.Option(help="Overlap of chunks (default 50).")]
MinVersion = Annotated[str | None, typer.Option(help="Wait until this ingest version is applied.")]
_COLUMNS = ("name", "documents", "chunks", "chunk size", "overlap", "created")


def _row(info: rag.CollectionInfo) -> tuple[Any, ...]:
    created = info.created_at.isoformat(timespec="seconds")
    return info.name, info.documents, info.chunks, info.chunk_size, info.chunk_overlap, created


@collections.command("list")
def list_collections(context: typer.Context, *, as_json: JsonOption = False) -> None:
    """Every collection with its statistics.

    Example:

        x0 rag collections list
    """
    with state(context).client() as x0:
        listed = x0.list_collections()
    if as_json:
        print_json(listed)
    else:
        print_table(_COLUMNS, (_row(c) for c in listed.collections))


@collections.command()
def create(
    context: typer.Context,
    *,
    name: Name,
    chunk_size: ChunkSize = None,
    chunk_overlap: ChunkOverlap = None,
    as_json: JsonOption = False,
) -> None:
    """Create a collection.

    Examples:

        x0 rag collections create notes

        x0 rag collections create manuals --chunk-size 1024 --chunk-overlap 100
    """
    fields: dict[str, Any] = {"name": name}
    if chunk_size is not None:
        fields["chunk_size"] = chunk_size
    if chunk_overlap is not None:
        fields["chunk_overlap"] = chunk_overlap
    with state(context).client() as x0:
        created = x0.create_collection(rag.CreateCollectionRequest.model_validate(fields))
    print_json(created) if as_json else print_fields(created)


@collections.command()
def show(context: typer.Context, *, name: Name, as_json: JsonOption = False) -> None:
    """A collection's settings and statistics.

    Example:

        x0 rag collections show notes --json
    """
    with state(context).client() as x0:
        info = x0.get_collection(name=name)
    print_json(info) if as_json else print_fields(info)


@collections.command()
def delete(context: typer.Context, *, name: Name, as_json: JsonOption = False) -> None:
    """Delete a collection and its documents.

    Example:

        x0 rag collections delete notes
    """
    with state(context).client() as x0:
        deleted = x0.delete_collection(name=name)
    print_json(deleted) if as_json else print_line(f"deleted {deleted.name}")


@app.command()
def search(
    context: typer.Context,
    *,
    collection: Name,
    query: Annotated[str, typer.Argument(help="What to look for.", show_default=False)],
    k: Annotated[int, typer.Option("-k", help="How many hits.")] = 10,
    mode: Annotated[rag.SearchMode, typer.Option()] = "hybrid",
    filter_json: Annotated[
        str | None,
        typer.Option("--filter", help='Metadata filter as JSON, e.g. \'{"lang": "en"}\'.'),
    ] = None,
    min_version: MinVersion = None,
    as_json: JsonOption = False,
) -> None:
    """Vector, keyword or hybrid (RRF) search; best hits first.

    Examples:

        x0 rag search notes "weather today"

        x0 rag search notes "sunny" -k 3 --mode vector --filter '{"lang": "en"}' --json
    """
    with state(context).client() as x0:
        found = x0.search(
            collection=collection,
            query=query,
            k=k,
            mode=mode,
            filter=json.loads(filter_json) if filter_json else None,
            min_version=min_version,
        )
    if as_json:
        print_json(found)
        return
    print_table(
        ("score", "document", "chunk", "text"),
        ((f"{h.score:.4f}", h.document_id, h.chunk_id, _snippet(h.text)) for h in found.hits),
    )


def _snippet(text: str, width: int = 100) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
