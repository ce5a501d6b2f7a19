"""The rag worker's pure logic: chunking, rank fusion, metadata filters, errors.

Nothing here imports faststream, fastapi, asyncpg or redis (a test checks it), so
every rule can be unit-tested without a broker, database or model.
"""

from x0_rag.domain.chunking import Chunk, chunk_text
from x0_rag.domain.filters import MetadataFilter
from x0_rag.domain.fusion import FusedHit, reciprocal_rank_fusion
from x0_rag.errors import (
    InvalidFilter,
    InvalidInput,
    ModelUnavailable,
    NotFound,
    RagError,
    SnapshotCorrupt,
    TooLarge,
    Unavailable,
)

__all__ = [
    "Chunk",
    "FusedHit",
    "InvalidFilter",
    "InvalidInput",
    "MetadataFilter",
    "ModelUnavailable",
    "NotFound",
    "RagError",
    "SnapshotCorrupt",
    "TooLarge",
    "Unavailable",
    "chunk_text",
    "reciprocal_rank_fusion",
]
