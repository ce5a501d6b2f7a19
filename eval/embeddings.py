"""Chunk the documents as the service does and embed the chunks, cached on disk.

Embedding ~20,000 chunks takes several minutes on two cores, so the vectors are kept
under ``CACHE_DIR`` (git-ignored) by the SHA-256 of each chunk's text, in one file per
model (named by a digest of the model's files and its input length): another corpus,
chunking or model embeds what it lacks and never reads a stale vector.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from x0_rag.domain.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE, chunk_text

if TYPE_CHECKING:
    from x0_rag.adapters.embedder import Embedder

logger = logging.getLogger(__name__)

CACHE_DIR: Final = Path(".stack/eval-cache")


@dataclass(frozen=True, slots=True)
class Chunks:
    """Every chunk of the corpus: its document, text and (once embedded) vector."""

    document: list[str]
    text: list[str]
    vectors: npt.NDArray[np.float32]


def chunk_corpus(documents: dict[str, str]) -> tuple[list[str], list[str]]:
    """(document id, chunk text) of every chunk, with the service's default chunking."""
    owners, texts = [], []
    for page_id, text in documents.items():
        for chunk in chunk_text(text, size=DEFAULT_SIZE, overlap=DEFAULT_OVERLAP):
            owners.append(page_id)
            texts.append(chunk.text)
    return owners, texts


def embedded(documents: dict[str, str], embedder: Embedder, *, block: int = 512) -> Chunks:
    """The corpus's chunks and their vectors, from the cache or the model."""
    owners, texts = chunk_corpus(documents)
    model = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        model.update(hashlib.sha256((embedder.path / name).read_bytes()).digest())
    path = CACHE_DIR / f"chunks-{model.hexdigest()[:16]}-{embedder.max_length}.npz"
    cache = _read(path)
    keys = [hashlib.sha256(text.encode()).digest() for text in texts]
    missing = sorted({key: i for i, key in enumerate(keys) if key not in cache}.values())
    if missing:
        started = time.monotonic()
        for first in range(0, len(missing), block):
            rows = missing[first : first + block]
            vectors = embedder.embed([texts[i] for i in rows])
            cache.update({keys[i]: vector for i, vector in zip(rows, vectors, strict=True)})
            logger.info("embedded %d of %d chunks", first + len(rows), len(missing))
        logger.info("embedded %d chunks in %.0f s", len(missing), time.monotonic() - started)
        _write(path, cache)
    return Chunks(owners, texts, np.stack([cache[key] for key in keys]).astype(np.float32))


def _read(path: Path) -> dict[bytes, npt.NDArray[np.float32]]:
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as stored:
        return dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))


def _write(path: Path, cache: dict[bytes, npt.NDArray[np.float32]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    with staging.open("wb") as stream:
        np.savez(
            stream,
            keys=np.array(list(cache), dtype="S32"),
            vectors=np.stack(list(cache.values())),
        )
    staging.replace(path)
