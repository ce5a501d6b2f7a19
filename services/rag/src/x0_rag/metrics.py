"""The RAG service's own metrics. Every span it makes is named ``rag.<step>``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from x0_common.metrics import LATENCY_BUCKETS

SERVICE = "rag"


class RagMetrics:
    """Ingest, embedding, index, search, cache, snapshots and replication lag."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.ingested_documents = Counter(
            "x0_rag_ingested_documents_total",
            "Documents upserted or deleted by the writer.",
            ["service", "collection", "action"],
            registry=registry,
        )
        self.ingested_chunks = Counter(
            "x0_rag_ingested_chunks_total",
            "Chunks written by the writer.",
            ["service", "collection"],
            registry=registry,
        )
        self.embed_batch_size = Histogram(
            "x0_rag_embed_batch_size",
            "Texts per model call.",
            ["service"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=registry,
        )
        self.embed_latency = Histogram(
            "x0_rag_embed_latency_seconds",
            "Time of one model call.",
            ["service"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.index_size = Gauge(
            "x0_rag_index_size",
            "Live vectors in a collection's index on this replica.",
            ["service", "collection"],
            registry=registry,
        )
        self.search_latency = Histogram(
            "x0_rag_search_latency_seconds",
            "Time to answer a search, by mode.",
            ["service", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.cache = Counter(
            "x0_rag_cache_total",
            "Query cache lookups, by result (hit or miss).",
            ["service", "kind", "result"],
            registry=registry,
        )
        self.snapshot_age = Gauge(
            "x0_rag_snapshot_age_seconds",
            "Seconds since this replica's last snapshot.",
            ["service", "collection"],
            registry=registry,
        )
        self.replication_lag = Gauge(
            "x0_rag_replication_lag",
            "Index events this replica has not applied yet.",
            ["service"],
            registry=registry,
        )
