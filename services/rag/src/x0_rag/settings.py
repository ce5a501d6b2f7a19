"""RAG worker settings, from ``X0_RAG_*`` (infrastructure from ``X0_*``)."""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field

from x0_common.principal import DEFAULT_TENANT, TenantId
from x0_common.settings import ServiceSettings, env_config


class RagSettings(ServiceSettings):
    """What one RAG worker replica needs to know."""

    model_config = env_config("X0_RAG_")

    port: int = 8002
    # Unique per running replica (it names this replica's snapshot folder).
    replica_id: str = Field(default_factory=socket.gethostname, pattern=r"^[A-Za-z0-9._-]+$")
    # Consumer group of the query responders (shared) and of the ingest writers (shared).
    query_group_id: str = "x0-rag-queries"
    writer_group_id: str = "x0-rag-writer"
    partitions: int = Field(default=6, ge=1)
    ingest_partitions: int = Field(default=4, ge=1)
    # Model threads: set on purpose (torch and BLAS would otherwise fight over cores).
    torch_threads: int = Field(default=1, ge=1, le=64)
    embed_max_batch: int = Field(default=64, ge=1, le=1024)
    # Ingest chunks per model call: a query arriving during an ingest waits for at most
    # one such call (queries go first; docs/performance.md, make bench ONLY=rag_ingest).
    embed_background_batch: int = Field(default=16, ge=1, le=1024)
    embed_linger_ms: float = Field(default=2.0, ge=0, le=100)
    snapshot_dir: Path = Path(".stack/rag-snapshots")
    snapshot_interval_seconds: float = Field(default=60.0, gt=0)
    # How long a search with min_version may wait for this replica to catch up.
    max_version_wait_ms: int = Field(default=5_000, ge=0, le=60_000)
    cache_ttl_seconds: int = Field(default=300, ge=0)
    # The tenant of ingests upstream producers publish straight to Kafka without a
    # principal (the gateway always sends its caller's).
    default_tenant: TenantId = DEFAULT_TENANT
    # Quotas per tenant: a create or an upsert past them is refused (quota_exceeded, 403).
    max_collections_per_tenant: int = Field(default=1_000, ge=1)
    max_documents_per_tenant: int = Field(default=10_000_000, ge=1)
