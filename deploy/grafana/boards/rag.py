"""The RAG worker: ingestion, embedding, search, its caches and index replicas."""

from __future__ import annotations

from panels import Kinds, Panel, number
from promql import Service

TITLE = "x0 / RAG"

CACHE = "x0_rag_cache_total"
SEARCH = "x0_rag_search_latency_seconds"
HIT = 'result="hit"'
LAG = "x0_rag_replication_lag"
SNAPSHOT_AGE = "x0_rag_snapshot_age_seconds"


def panels() -> list[Panel]:
    s = Service("rag")
    k = Kinds(s)
    return [
        number(
            "Searches/s",
            "Searches answered per second.",
            s.rate(f"{SEARCH}_count"),
            unit="reqps",
        ),
        number(
            "Cache hit ratio",
            "Share of query-cache lookups that hit.",
            s.share(CACHE, HIT),
            unit="percentunit",
        ),
        number(
            "Replication lag",
            "Index events the most lagging replica has not applied yet.",
            s.gauge(LAG, op="max"),
            red_from=1000,
        ),
        number(
            "Oldest snapshot",
            "Age of the oldest index snapshot on any replica.",
            s.gauge(SNAPSHOT_AGE, op="max"),
            unit="s",
        ),
        k.rates(
            "Ingested documents",
            "Documents upserted or deleted per second, by collection and action.",
            "x0_rag_ingested_documents_total",
            "collection",
            "action",
        ),
        k.rates(
            "Ingested chunks",
            "Chunks written per second, by collection.",
            "x0_rag_ingested_chunks_total",
            "collection",
        ),
        k.spread(
            "Embed batch size",
            "Texts per model call: mean and 95th percentile.",
            "x0_rag_embed_batch_size",
        ),
        k.latency(
            "Embed latency",
            "Time of one model call, p50 and p99.",
            "x0_rag_embed_latency_seconds",
        ),
        k.latency(
            "Search latency by mode",
            "Time to answer a search, p50 and p99, per search mode.",
            SEARCH,
            "mode",
        ),
        k.ratio(
            "Cache hit ratio by kind",
            "Share of each cache's lookups that hit.",
            CACHE,
            HIT,
            "kind",
        ),
        k.gauges(
            "Index size",
            "Live vectors per collection on each replica.",
            "x0_rag_index_size",
            "collection",
            "instance",
        ),
        k.gauges(
            "Replication lag by replica",
            "Index events each replica has not applied yet.",
            LAG,
            "instance",
            op="max",
        ),
        k.gauges(
            "Snapshot age",
            "Seconds since each replica's last snapshot, by collection.",
            SNAPSHOT_AGE,
            "collection",
            "instance",
            op="max",
            unit="s",
        ),
        *k.responder(),
    ]
