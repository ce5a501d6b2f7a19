"""What an upsert will store: documents checked, de-duplicated and chunked, before any
model or database work.

Rules (each refusal refuses the whole message: one ingest, one outcome):

- A document id that appears more than once in one message: the **last** one wins,
  as if the upserts had been sent one after the other. It keeps the position of
  its last occurrence.
- A text with no chunk (empty or only whitespace) is refused (``InvalidInput``):
  a document that no search can ever find is almost certainly a caller's mistake.
- Texts and metadata that PostgreSQL cannot store are refused up front
  (``InvalidInput``): NUL characters, unpaired surrogates, NaN or infinite numbers.
- Metadata above ``MAX_METADATA_BYTES`` of JSON is refused (``TooLarge``): it is
  copied onto every chunk of the document in index events and replica memory.

The rules are the request model's (:class:`x0_common.events.rag.Document`), which the
gateway applies before it publishes and the writer when it decodes a message; they
are checked here again so that a plan never holds what PostgreSQL cannot store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic_core import PydanticCustomError

from x0_common.events.rag import Document, metadata_json
from x0_rag.domain.chunking import Chunk, chunk_text
from x0_rag.errors import InvalidInput, TooLarge


@dataclass(frozen=True, slots=True)
class PlannedDocument:
    """A document ready to store: its chunks, and its metadata as JSON text."""

    id: str
    text: str
    metadata: dict[str, Any]
    metadata_json: str
    chunks: list[Chunk]


@dataclass(frozen=True, slots=True)
class UpsertPlan:
    """The documents of one upsert message, in order, and every chunk text to embed."""

    documents: list[PlannedDocument]
    chunk_size: int
    chunk_overlap: int

    @property
    def texts(self) -> list[str]:
        """Chunk texts in document order; row ``i`` of the embeddings belongs to text ``i``."""
        return [chunk.text for document in self.documents for chunk in document.chunks]


def last_wins(documents: Sequence[Document]) -> list[Document]:
    """One document per id: the last occurrence, at the position of that occurrence."""
    last = {document.id: index for index, document in enumerate(documents)}
    return [document for index, document in enumerate(documents) if last[document.id] == index]


def plan_upsert(documents: Sequence[Document], *, size: int, overlap: int) -> UpsertPlan:
    """Check, de-duplicate and chunk ``documents`` with the collection's chunking."""
    planned = []
    for document in last_wins(documents):
        _check_text(document.id, document.text)
        metadata_json = _metadata_json(document.id, document.metadata)
        chunks = chunk_text(document.text, size=size, overlap=overlap)
        if not chunks:
            raise InvalidInput(
                f"document {document.id!r} has no text once whitespace is removed",
                details={"document_id": document.id, "reason": "empty_text"},
            )
        planned.append(
            PlannedDocument(
                id=document.id,
                text=document.text,
                metadata=document.metadata,
                metadata_json=metadata_json,
                chunks=chunks,
            )
        )
    return UpsertPlan(planned, size, overlap)


def _check_text(document_id: str, text: str) -> None:
    if "\x00" in text or not _encodable(text):
        raise InvalidInput(
            f"document {document_id!r} holds a NUL character or an unpaired surrogate",
            details={"document_id": document_id, "reason": "unstorable_text"},
        )


def _metadata_json(document_id: str, metadata: dict[str, Any]) -> str:
    # The rule is the request model's (x0_common.events.rag.metadata_json): a message
    # that reached the writer passed it already; this keeps the plan honest on its own.
    try:
        return metadata_json(metadata)
    except PydanticCustomError as error:
        if error.type == "metadata_too_large":
            raise TooLarge(
                f"metadata of document {document_id!r} is larger than allowed",
                details={"document_id": document_id, **(error.context or {})},
            ) from None
        raise InvalidInput(
            f"metadata of document {document_id!r} cannot be stored as JSON"
            " (NaN, infinity, NUL or an unpaired surrogate)",
            details={"document_id": document_id, "reason": "unstorable_metadata"},
        ) from None


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
