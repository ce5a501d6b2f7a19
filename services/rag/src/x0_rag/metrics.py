"""The RAG service's own metrics. Every span it makes is named ``rag.<step>``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from x0_common.metrics import MetricFactory

SERVICE = "rag"


class RagMetrics:
    """Ingest, embedding, index, search, cache, snapshots and replication lag."""

    def __init__(self, registry: CollectorRegistry) -> None:
        declare = MetricFactory(registry)
        self.ingested_documents = declare.counter(
            "x0_rag_ingested_documents_total",
            "Documents upserted or deleted by the writer.",
            "collection",
            "action",
        )
        self.ingested_chunks = declare.counter(
            "x0_rag_ingested_chunks_total", "Chunks written by the writer.", "collection"
        )
        self.embed_batch_size = declare.histogram(
            "x0_rag_embed_batch_size",
            "Texts per model call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.embed_latency = declare.histogram(
            "x0_rag_embed_latency_seconds", "Time of one model call."
        )
        self.index_size = declare.gauge(
            "x0_rag_index_size",
            "Live vectors in a collection's index on this replica.",
            "collection",
        )
        self.search_latency = declare.histogram(
            "x0_rag_search_latency_seconds", "Time to answer a search, by mode.", "mode"
        )
        self.cache = declare.counter(
            "x0_rag_cache_total", "Query cache lookups, by result (hit or miss).", "kind", "result"
        )
        self.snapshot_age = declare.gauge(
            "x0_rag_snapshot_age_seconds",
            "Seconds since this replica's last snapshot.",
            "collection",
        )
        self.replication_lag = declare.gauge(
            "x0_rag_replication_lag", "Index events this replica has not applied yet."
        )
