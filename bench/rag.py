"""Section ``rag``: ingest, ANN recall, search latency and cold start of the RAG worker.

Four figures, each against a baseline measured in the same run:

- ``rag.ingest.throughput``: chunks/s from the first ``POST .../documents`` through the
  gateway, ``x0.rag.ingest``, the writer (chunking, embedding, PostgreSQL), the
  ``x0.rag.index`` event and the replica's index, until the last message's version is
  applied. Messages of 50 documents go out 4 at a time without waiting; then a keyword
  search with ``min_version`` = the highest version answers once it is applied
  (retried after each 504 of the worker's bounded wait). Untimed before: one warm-up
  document, and the new writer group's replay of the older ingest log (awaited through
  its committed offsets). Baseline: the model alone in this process,
  ``Embedder(num_threads=<the worker's torch_threads>).embed`` on the same chunk texts,
  called as the writer calls it (each message's chunks in slices of
  ``embed_max_batch``). Target: at least 0.8 of it.
- ``rag.ann.recall10``: recall@10 of ``VectorIndex`` with the collection defaults
  (M=16, ef_construction=200, ef=64) against exact brute force, on the index the worker
  itself built from PostgreSQL (its snapshot, loaded with ``VectorIndex.load``), for
  held-out chunk embeddings that are not in the index. Man pages repeat boilerplate, so
  some chunks are exact duplicates: a returned chunk counts as a hit when its exact
  distance is within the true 10th-nearest distance (ties), and the strict id-based
  recall is printed beside it. A table prints ef 32/64/128/256; each has a record.
- ``rag.search.gateway.p50``: vector search (k=10) over HTTP through the gateway at
  concurrency 1, each query a distinct held-out sentence (its cached embedding is
  deleted from Redis first, so the model runs; the result cache cannot hit), against
  the SUM of three baselines: the raw aiokafka echo round trip p50 (``bench.raw_echo``),
  the single-sentence embedding p50 in this process (same sentences, same thread count
  as the worker) and the raw hnswlib ``knn_query`` p50 on the same index file (same ef,
  k=10). Searches and baselines alternate in rounds while the services idle, so that
  drift in the machine's speed falls on both sides. p99s are printed.
- ``rag.coldstart.snapshot``: time from process start to ``/health/ready`` (polled every
  0.2 s) of a worker that loads its snapshot, against the same worker with an empty
  snapshot folder (rebuild from PostgreSQL; stopping that worker wrote the snapshot).
  Both include interpreter start, imports, model load and Kafka joins (the same in
  both). One start each. Target: not slower than the rebuild (<= 1.0).

Corpus: text nobody on the project wrote, read offline: the Python documentation's
``pydoc_data.topics`` and the English man pages in ``/usr/share/man/man[1-8]`` (gzip'd
troff, markup stripped crudely; the 16k generated ``gcloud_*`` pages are left out as
near-duplicates), in sorted order, paragraphs grouped into documents of about 1 kB,
exact duplicate documents dropped, chunked as the writer chunks them (collection
``chunk_size`` 256, ``chunk_overlap`` 32). The documents are shuffled with a fixed seed
and split: about 3,000 chunks go through Kafka (throughput), about 1,000 are held out
as recall queries, and the rest bring the collection to 50,500+ chunks.

Those rest are NOT ingested through Kafka (embedding 47k chunks with the worker's one
torch thread would take about 13 minutes): their rows are written straight into
PostgreSQL with the writer's own adapter (``RagStore.ingest_partition`` and
``IngestPartition.upsert``, as messages of a topic of the run's own, so that nothing is
published), embeddings computed in this process by the same model. They
reach a worker's index only by a restart: the rebuild from PostgreSQL, then the
snapshot. Corpus embeddings are cached in ``bench/results/rag-embeddings-<hash>.npy``
(git-ignored), keyed by the chunk texts and the model, so reruns skip that step.

The gateway and the worker run as processes, with consumer groups, replica id and
snapshot folder of their own; the collection has a unique name and is deleted at the
end (straight from PostgreSQL if the run failed before it could be deleted through
the gateway).
"""

from __future__ import annotations

import os

# Before numpy or torch load: their thread pools would fight over the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import asyncio
import gzip
import hashlib
import json
import pydoc_data.topics
import random
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import asyncpg
import hnswlib
import httpx
import numpy as np
import numpy.typing as npt
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.harness import closed_loop, percentile, worker_process
from bench.kafka import RawEchoClient
from bench.report import RESULTS, Record
from x0_common.events.rag import INGEST_TOPIC, IndexParams
from x0_common.kafka.clients import connection_options, consumer_options, ensure_topics
from x0_common.settings import CommonSettings, KafkaSettings
from x0_common.testing.processes import service_process
from x0_gateway.settings import GatewaySettings
from x0_gateway.testing import provision_key
from x0_rag.adapters.cache import SearchCache
from x0_rag.adapters.embedder import Embedder
from x0_rag.adapters.hnsw import VectorIndex
from x0_rag.adapters.rows import IngestPosition
from x0_rag.adapters.store import RagStore
from x0_rag.domain import snapshot as snapshot_files
from x0_rag.domain.chunking import chunk_text
from x0_rag.domain.ingest import PlannedDocument, UpsertPlan
from x0_rag.settings import RagSettings

CHUNK_SIZE: Final = 256
CHUNK_OVERLAP: Final = 32
INDEXED_CHUNKS: Final = 50_500  # in the collection: through Kafka plus straight into PostgreSQL
INGEST_CHUNKS: Final = 3_000  # through Kafka (throughput)
HELD_OUT_CHUNKS: Final = 1_000  # recall queries, never indexed
DOCUMENT_CHARS: Final = 1_024  # paragraphs are grouped until a document has this many
DOCS_PER_MESSAGE: Final = 50
PUBLISH_CONCURRENCY: Final = 4
SEARCH_WARMUP: Final = 30
SEARCH_ROUNDS: Final = 3
SEARCH_CALLS: Final = 300  # in SEARCH_ROUNDS rounds, alternating with the baselines
ECHO_CALLS: Final = 400
EMBED_WARMUP: Final = 30
K: Final = 10
EF_CANDIDATES: Final = (32, 64, 128, 256)
RECALL_TARGET: Final = ">= 0.95"
SEED: Final = 20_240_601
START_TIMEOUT: Final = 900.0
MAN_ROOT: Final = Path("/usr/share/man")
CACHE_DIR: Final = RESULTS.parent
MODEL_KEY: Final = "all-MiniLM-L6-v2@256"
WRITER_GROUP: Final = "X0_RAG_WRITER_GROUP_ID"

Vectors = npt.NDArray[np.float32]


# -- corpus -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Doc:
    """A document as sent to the collection, with the chunk texts the writer will make."""

    id: str
    text: str
    source: str
    chunks: list[Any]  # x0_rag.domain.chunking.Chunk

    @property
    def body(self) -> dict[str, Any]:
        """The document as the gateway takes it."""
        return {"id": self.id, "text": self.text, "metadata": {"source": self.source}}


@dataclass
class Corpus:
    """The documents, split by use, and where they came from."""

    ingest: list[Doc]
    held_out: list[Doc]
    bulk: list[Doc]
    description: str

    def texts(self) -> list[str]:
        """Every chunk text in embedding order: ingest, held out, bulk."""
        return [c.text for doc in self.ingest + self.held_out + self.bulk for c in doc.chunks]


_ESCAPE = re.compile(
    r"\\f(?:\[[^\]]*\]|\(..|.)"  # font changes
    r"|\\s[+-]?\d+"  # size changes
    r"|\\\(..|\\\[[^\]]*\]"  # special characters
    r"|\\\*(?:\(..|\[[^\]]*\]|.)"  # strings
    r"|\\n(?:\(..|.)"  # number registers
    r"|\\."  # anything else escaped
)
# troff man/mdoc macros by what they do (a string of names reads better than a list).
_BREAK_MACROS: Final = frozenset(
    "PP LP P IP TP TQ HP RS RE Pp Lp Bl El It Bd Ed EX EE sp br nf fi".split()  # noqa: SIM905
)
_HEADING_MACROS: Final = frozenset(("SH", "SS", "Sh", "Ss"))
_SKIPPED_MACROS: Final = frozenset(("TH", "Dd", "Dt", "Os", "IX", "UC", "PD"))
_BLOCK_MACROS: Final = frozenset(("de", "ig", "am"))


def _macro_line(line: str) -> list[str]:
    """What a troff request or macro line contributes to the text."""
    parts = line[1:].strip().split(None, 1)
    if not parts:
        return [""]
    macro, rest = parts[0], (parts[1] if len(parts) > 1 else "")
    rest = rest.replace('"', "").strip()
    if macro in _HEADING_MACROS:
        return ["", rest, ""]
    if macro in _BREAK_MACROS:
        return ["", rest] if macro in {"IP", "It", "TQ"} and rest else [""]
    if macro in _SKIPPED_MACROS or not macro[:1].isupper():
        return []  # roff requests (.de, .if, .ds, .nr, ...) and page headers
    return [rest]  # font and mdoc macros carry their words as arguments


def strip_troff(source: str) -> str:
    """Plain text of a man page, crudely: words kept, markup gone, paragraphs blank-lined."""
    out: list[str] = []
    in_block = False
    for line in source.splitlines():
        if in_block:
            in_block = not line.startswith("..")
            continue
        if line.startswith(('.\\"', "'\\\"", ".\\#", '\\"')):
            continue
        if line.startswith((".", "'")):
            macro = line[1:].strip().split(None, 1)
            if macro and macro[0] in _BLOCK_MACROS:
                in_block = True
                continue
            out.extend(_macro_line(line))
            continue
        out.append(line)
    text = "\n".join(out).replace("\\-", "-").replace("\\e", "\\").replace("\\ ", " ")
    text = _ESCAPE.sub("", text)
    return "".join(char for char in text if char == "\n" or char.isprintable())


def _paragraphs(text: str) -> Iterator[str]:
    """Blank-line separated paragraphs, lines joined as troff fills them."""
    for block in re.split(r"\n\s*\n", text):
        paragraph = re.sub(r"\s+", " ", block).strip()
        if len(paragraph) >= 20:
            yield paragraph


def _documents(text: str, name: str) -> Iterator[tuple[str, str]]:
    """``(id, text)`` of documents of about ``DOCUMENT_CHARS`` made of whole paragraphs."""
    current: list[str] = []
    size = number = 0
    for paragraph in _paragraphs(text):
        current.append(paragraph)
        size += len(paragraph) + 2
        if size >= DOCUMENT_CHARS:
            yield f"{name}#{number}", "\n\n".join(current)
            current, size, number = [], 0, number + 1
    if current:
        yield f"{name}#{number}", "\n\n".join(current)


def _sources() -> Iterator[tuple[str, str, str]]:
    """``(name, source kind, plain text)``: Python's topics, then man pages, sorted."""
    topics: dict[str, str] = pydoc_data.topics.topics
    for key in sorted(topics):
        yield f"pydoc/{key}", "pydoc", topics[key]
    pages = sorted(
        page
        for page in MAN_ROOT.glob("man[1-8]/*.gz")
        if not page.name.startswith("gcloud") and page.is_file()
    )
    for page in pages:
        try:
            raw = gzip.decompress(page.read_bytes()).decode("utf-8", "replace")
        except (OSError, EOFError):
            continue
        if raw.lstrip().startswith(".so "):
            continue  # an alias of another page
        yield f"{page.parent.name}/{page.name.removesuffix('.gz')}", "man", strip_troff(raw)


def build_corpus() -> Corpus:
    """Documents until the chunks cover every use, shuffled, then split."""
    needed = INDEXED_CHUNKS + HELD_OUT_CHUNKS + 200
    docs: list[Doc] = []
    seen: set[bytes] = set()
    total = 0
    counts = {"pydoc": 0, "man": 0}
    for name, source, text in _sources():
        counts[source] += 1
        for doc_id, doc_text in _documents(text, name):
            digest = hashlib.sha256(doc_text.encode()).digest()
            if digest in seen:
                continue
            seen.add(digest)
            chunks = chunk_text(doc_text, size=CHUNK_SIZE, overlap=CHUNK_OVERLAP)
            docs.append(Doc(doc_id[:256], doc_text, source, chunks))
            total += len(chunks)
        if total >= needed:
            break
    if total < needed:
        msg = f"only {total} chunks of text found; need {needed}"
        raise RuntimeError(msg)
    random.Random(SEED).shuffle(docs)
    ingest, held_out, bulk = _take(docs, INGEST_CHUNKS), [], []
    rest = docs[len(ingest) :]
    held_out = _take(rest, HELD_OUT_CHUNKS)
    rest = rest[len(held_out) :]
    bulk = _take(rest, INDEXED_CHUNKS - _chunk_count(ingest))
    chars = sum(len(doc.text) for doc in docs)
    description = (
        f"{counts['pydoc']} pydoc_data topics + {counts['man']} man pages "
        f"(/usr/share/man/man[1-8], gcloud_* excluded) -> {len(docs)} documents, "
        f"{total} chunks, {chars / 1e6:.1f} MB of text; chunk_size {CHUNK_SIZE}, "
        f"overlap {CHUNK_OVERLAP}"
    )
    return Corpus(ingest, held_out, bulk, description)


def _chunk_count(docs: Sequence[Doc]) -> int:
    return sum(len(doc.chunks) for doc in docs)


def _take(docs: Sequence[Doc], chunks: int) -> list[Doc]:
    """The first documents of ``docs`` that hold at least ``chunks`` chunks."""
    taken: list[Doc] = []
    count = 0
    for doc in docs:
        if count >= chunks:
            break
        taken.append(doc)
        count += len(doc.chunks)
    return taken


def query_sentences(docs: Sequence[Doc], count: int) -> list[str]:
    """Distinct plain sentences from ``docs`` (held out: in no index), shuffled."""
    found: dict[str, None] = {}
    for doc in docs:
        for sentence in re.split(r"(?<=[.!?])\s+", doc.text.replace("\n\n", " ")):
            words = sentence.split()
            letters = sum(char.isalpha() for char in sentence)
            if 40 <= len(sentence) <= 200 and len(words) >= 6 and letters > 0.7 * len(sentence):
                found[sentence] = None
    sentences = sorted(found)
    random.Random(SEED).shuffle(sentences)
    if len(sentences) < count:
        msg = f"only {len(sentences)} query sentences in the held-out documents"
        raise RuntimeError(msg)
    return sentences[:count]


def corpus_embeddings(texts: list[str]) -> Vectors:
    """Every chunk's embedding, from the cache file or computed (all cores) and cached."""
    digest = hashlib.sha256(f"{MODEL_KEY}\0{CHUNK_SIZE}\0{CHUNK_OVERLAP}".encode())
    for text in texts:
        digest.update(text.encode() + b"\0")
    path = CACHE_DIR / f"rag-embeddings-{digest.hexdigest()[:16]}.npy"
    if path.exists():
        cached: Vectors = np.load(path, allow_pickle=False)
        if cached.shape == (len(texts), 384):
            print(f"corpus embeddings: cached in {path.name}", flush=True)
            return cached
    threads = os.cpu_count() or 1
    model = Embedder(num_threads=threads)
    rows = np.empty((len(texts), 384), dtype=np.float32)
    started = time.perf_counter()
    step = 4096
    for first in range(0, len(texts), step):
        rows[first : first + step] = model.embed(texts[first : first + step])
        done = min(first + step, len(texts))
        rate = done / (time.perf_counter() - started)
        print(
            f"  embedded {done}/{len(texts)} chunks ({rate:.0f}/s, {threads} threads)", flush=True
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npy")
    np.save(temporary, rows, allow_pickle=False)
    temporary.replace(path)
    print(f"corpus embeddings: computed in {time.perf_counter() - started:.0f} s", flush=True)
    return rows


# -- in-process baselines ---------------------------------------------------------------


def model_throughput(model: Embedder, messages: Sequence[Sequence[Doc]], batch: int) -> float:
    """Chunks/s of the model alone, called as the writer calls it: per message, in
    slices of ``batch`` texts."""
    texts = [[c.text for doc in message for c in doc.chunks] for message in messages]
    model.embed(texts[0][:batch])  # warm
    count, started = 0, time.perf_counter()
    for message in texts:
        for first in range(0, len(message), batch):
            model.embed(message[first : first + batch])
        count += len(message)
    return count / (time.perf_counter() - started)


def embedding_latencies(model: Embedder, sentences: Sequence[str]) -> tuple[list[float], Vectors]:
    """Seconds per single-sentence ``embed``, and the vectors."""
    latencies, vectors = [], []
    for sentence in sentences:
        started = time.perf_counter()
        vectors.append(model.embed([sentence])[0])
        latencies.append(time.perf_counter() - started)
    return latencies, np.asarray(vectors, dtype=np.float32)


def knn_latencies(index: hnswlib.Index, queries: Vectors) -> list[float]:
    """Seconds per raw hnswlib ``knn_query`` (k=10, one thread)."""
    latencies = []
    for query in queries:
        started = time.perf_counter()
        index.knn_query(query, k=K, num_threads=1)
        latencies.append(time.perf_counter() - started)
    return latencies


def raw_index(folder: Path, ef: int) -> hnswlib.Index:
    """The snapshot's hnswlib file loaded by hnswlib itself, searching with ``ef``."""
    index = hnswlib.Index(space="cosine", dim=384)
    index.load_index(str(folder / snapshot_files.read_manifest(folder).index_file))
    index.set_ef(ef)
    return index


@dataclass
class RecallRow:
    """Recall@10 at one ef."""

    ef: int
    recall: float  # ties with the true 10th distance count as hits
    strict: float  # ids only
    query_ms: float


def recall_table(
    index: VectorIndex, ids: npt.NDArray[np.int64], base: Vectors, queries: Vectors
) -> list[RecallRow]:
    """Recall@10 of ``index`` against brute force over ``base`` (row i is id ``ids[i]``)."""
    order = np.argsort(ids)
    ids, base = ids[order], base[order]
    exact_ids, kth = [], []
    for first in range(0, len(queries), 100):
        distances = 1.0 - queries[first : first + 100] @ base.T
        top = np.argpartition(distances, K - 1, axis=1)[:, :K]
        exact_ids.extend({int(ids[j]) for j in row} for row in top)
        kth.extend(np.take_along_axis(distances, top, axis=1).max(axis=1).tolist())
    rows = []
    for ef in EF_CANDIDATES:
        hits = strict = 0
        elapsed = 0.0
        for query, truth, limit in zip(queries, exact_ids, kth, strict=True):
            started = time.perf_counter()
            found, _ = index.search(query, K, ef=ef)
            elapsed += time.perf_counter() - started
            strict += len(truth.intersection(found.tolist()))
            true_distances = 1.0 - base[np.searchsorted(ids, found)] @ query
            hits += int(np.count_nonzero(true_distances <= limit + 1e-5))
        total = K * len(queries)
        rows.append(RecallRow(ef, hits / total, strict / total, elapsed / len(queries) * 1e3))
    return rows


# -- the services -----------------------------------------------------------------------


@dataclass
class Run:
    """Names and folders of one run."""

    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="x0-bench-rag-")))

    @property
    def collection(self) -> str:
        """The collection this run creates and deletes."""
        return f"bench-{self.run_id}"

    def worker_environment(self, snapshots: Path) -> dict[str, str]:
        """A worker of this run, keeping its snapshots under ``snapshots``."""
        return {
            "X0_RAG_QUERY_GROUP_ID": f"x0-rag-queries-bench-{self.run_id}",
            WRITER_GROUP: f"x0-rag-writer-bench-{self.run_id}",
            "X0_RAG_REPLICA_ID": f"bench-{self.run_id}",
            "X0_RAG_SNAPSHOT_DIR": str(snapshots),
        }


@contextmanager
def timed_worker(environment: dict[str, str], timings: list[float]) -> Iterator[int]:
    """A RAG worker process; appends its seconds from start to ready to ``timings``."""
    started = time.perf_counter()
    with service_process(
        "x0_rag", environment=environment, port_variable="X0_RAG_PORT", timeout=START_TIMEOUT
    ) as port:
        timings.append(time.perf_counter() - started)
        yield port


def _ok(response: httpx.Response, *expected: int) -> dict[str, Any]:
    if response.status_code not in expected:
        request = response.request
        msg = f"{request.method} {request.url}: {response.status_code} {response.text}"
        raise RuntimeError(msg)
    body: dict[str, Any] = response.json()
    return body


async def create_collection(client: httpx.AsyncClient, collection: str) -> None:
    """Create ``collection`` with the bench's chunking and the default index."""
    create = {
        "name": collection,
        "index": IndexParams().model_dump(),
        "chunk_size": CHUNK_SIZE,
        "chunk_overlap": CHUNK_OVERLAP,
    }
    _ok(await client.post("/v1/rag/collections", json=create), 201)


def _offset(version: str) -> int:
    return int(version.split(":")[1])


async def ingest(
    client: httpx.AsyncClient, collection: str, messages: list[list[Doc]]
) -> tuple[float, str]:
    """Send ``messages`` through the gateway; seconds until the last one is applied, and
    its version. One collection is one ingest partition, so the highest offset is last."""
    path = f"/v1/rag/collections/{collection}/documents"
    gate = asyncio.Semaphore(PUBLISH_CONCURRENCY)

    async def send(message: list[Doc]) -> str:
        async with gate:
            response = await client.post(path, json={"documents": [d.body for d in message]})
        return str(_ok(response, 202)["version"])

    started = time.perf_counter()
    versions = await asyncio.gather(*(send(message) for message in messages))
    last = max(versions, key=_offset)
    await wait_applied(client, collection, last)
    return time.perf_counter() - started, last


async def wait_applied(client: httpx.AsyncClient, collection: str, version: str) -> None:
    """Search with ``min_version`` until it answers: it returns as soon as the replica
    applied ``version`` (each try waits up to the worker's cap, then 504: try again)."""
    while True:
        response = await client.post(
            f"/v1/rag/collections/{collection}/search",
            json={"query": "manual", "k": 1, "mode": "keyword", "min_version": version},
        )
        if response.status_code != 504:
            _ok(response, 200)
            return


async def bulk_insert(
    dsn: str, collection: str, docs: list[Doc], rows: Vectors, run_id: str
) -> None:
    """Write ``docs`` and their chunks with the writer's own adapter
    (:meth:`RagStore.ingest_partition` and :meth:`IngestPartition.upsert`), as ingest
    messages of a topic of this run alone: nothing is published, so no replica learns
    of them until it rebuilds from PostgreSQL."""
    topic = f"x0.bench.{run_id}.bulk"
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    assert pool is not None
    try:
        async with RagStore(pool).ingest_partition(topic, 0) as partition:
            offset = 0
            for number, first in enumerate(range(0, len(docs), 500)):
                plan = UpsertPlan(
                    [_planned(doc) for doc in docs[first : first + 500]], CHUNK_SIZE, CHUNK_OVERLAP
                )
                vectors = rows[offset : offset + len(plan.texts)]
                offset += len(plan.texts)
                await partition.upsert(IngestPosition(topic, 0, number), collection, plan, vectors)
    finally:
        await pool.close()


def _planned(doc: Doc) -> PlannedDocument:
    metadata = {"source": doc.source}
    return PlannedDocument(doc.id, doc.text, metadata, json.dumps(metadata), doc.chunks)


async def stored_embeddings(dsn: str, collection: str) -> tuple[npt.NDArray[np.int64], Vectors]:
    """Chunk ids and embeddings of the collection as PostgreSQL holds them."""
    connection = await asyncpg.connect(dsn)
    try:
        records = await connection.fetch(
            "SELECT chunk_id, embedding FROM rag.chunks WHERE collection = $1", collection
        )
    finally:
        await connection.close()
    ids = np.fromiter((r["chunk_id"] for r in records), dtype=np.int64, count=len(records))
    vectors = np.frombuffer(b"".join(r["embedding"] for r in records), dtype="<f4")
    return ids, vectors.reshape(-1, 384).astype(np.float32)


async def writer_caught_up(kafka: KafkaSettings, group: str, timeout: float = 300.0) -> int:
    """Wait until ``group`` committed the end of every ``x0.rag.ingest`` partition as it is
    now; returns how many messages the log holds. (A new writer group starts at the
    earliest offset and re-publishes the index events of everything retained.)"""
    admin = AIOKafkaAdminClient(**connection_options(kafka))
    consumer = AIOKafkaConsumer(**consumer_options(kafka), group_id=None)
    await admin.start()
    await consumer.start()
    try:
        (topic,) = await admin.describe_topics([INGEST_TOPIC])
        partitions = [
            TopicPartition(INGEST_TOPIC, p["partition"])
            for p in sorted(topic["partitions"], key=lambda p: p["partition"])
        ]
        if not partitions:
            msg = f"{INGEST_TOPIC} has no partitions"
            raise RuntimeError(msg)
        ends = await consumer.end_offsets(partitions)
        beginnings = await consumer.beginning_offsets(partitions)
        deadline = time.monotonic() + timeout
        while True:
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            behind = 0
            for partition in partitions:
                offset = committed[partition].offset if partition in committed else -1
                behind += max(0, ends[partition] - max(offset, 0))
            if behind == 0:
                return sum(ends[p] - beginnings[p] for p in partitions)
            if time.monotonic() > deadline:
                msg = f"the writer group is still {behind} ingest messages behind"
                raise RuntimeError(msg)
            await asyncio.sleep(0.2)
    finally:
        await consumer.stop()
        await admin.close()


def copy_snapshot(snapshots: Path, run: Run, into: Path) -> Path:
    """Copy the collection's current snapshot generation out of the worker's folder."""
    folder = snapshots / f"bench-{run.run_id}" / run.collection
    generation = folder / (folder / "CURRENT").read_text(encoding="ascii").strip()
    shutil.copytree(generation, into)
    return into


async def forget_query_embeddings(url: str, sentences: Sequence[str]) -> None:
    """Delete the sentences' cached embeddings, so every measured search runs the model."""
    client = aioredis.from_url(url)
    try:
        cache = SearchCache(client, None, ttl_seconds=1)  # type: ignore[arg-type] # keys only
        await client.delete(*(cache.embedding_key(sentence) for sentence in sentences))
    finally:
        await client.aclose()


async def search_latencies(
    client: httpx.AsyncClient, collection: str, sentences: Sequence[str]
) -> list[float]:
    """Seconds per vector search through the gateway, one at a time."""
    path = f"/v1/rag/collections/{collection}/search"
    latencies = []
    for sentence in sentences:
        started = time.perf_counter()
        response = await client.post(path, json={"query": sentence, "k": K, "mode": "vector"})
        latencies.append(time.perf_counter() - started)
        if not _ok(response, 200)["hits"]:
            msg = f"no hits for {sentence!r}"
            raise RuntimeError(msg)
    return latencies


@dataclass
class SearchSamples:
    """Latencies in seconds of the search and its three baselines."""

    gateway: list[float] = field(default_factory=list)
    echo: list[float] = field(default_factory=list)
    embed: list[float] = field(default_factory=list)
    knn: list[float] = field(default_factory=list)


async def search_rounds(
    client: httpx.AsyncClient,
    collection: str,
    kafka: KafkaSettings,
    *,
    model: Embedder,
    index: hnswlib.Index,
    warmup: Sequence[str],
    sentences: Sequence[str],
) -> SearchSamples:
    """Searches through the gateway, alternating in rounds with the three baselines (so
    that drift in the machine's speed falls on both sides); one call at a time."""
    samples = SearchSamples()
    topic = f"bench.raw.rag.{uuid.uuid4().hex[:8]}"
    await ensure_topics(kafka, [topic])
    echo = RawEchoClient(kafka, f"{topic}.replies")
    with worker_process("bench.raw_echo", "--topic", topic):
        await echo.start()
        try:

            async def echo_call() -> object:
                return await echo.request(topic, b"{}")

            await search_latencies(client, collection, warmup)
            await closed_loop(echo_call, concurrency=1, total=100)
            _, warm_vectors = embedding_latencies(model, warmup)
            knn_latencies(index, warm_vectors)
            per_round = len(sentences) // SEARCH_ROUNDS
            for first in range(0, per_round * SEARCH_ROUNDS, per_round):
                batch = sentences[first : first + per_round]
                samples.gateway += await search_latencies(client, collection, batch)
                samples.echo += await closed_loop(
                    echo_call, concurrency=1, total=ECHO_CALLS // SEARCH_ROUNDS
                )
                latencies, vectors = embedding_latencies(model, batch)
                samples.embed += latencies
                samples.knn += knn_latencies(index, vectors)
        finally:
            await echo.stop()
    return samples


async def drop_collection_rows(dsn: str, collection: str) -> None:
    """Cleanup after a failed run: the rows go (no worker holds the index any more)."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
    assert pool is not None
    try:
        await RagStore(pool).delete_collection(collection)
    finally:
        await pool.close()


# -- the section --------------------------------------------------------------------------


async def run(settings: CommonSettings) -> list[Record]:  # noqa: PLR0915 - one story, in order
    """Measure and return the rag records."""
    section_started = time.perf_counter()
    rag_settings = RagSettings()
    threads, batch = rag_settings.torch_threads, rag_settings.embed_max_batch
    dsn = settings.postgres.dsn.get_secret_value()
    corpus = build_corpus()
    print(f"corpus: {corpus.description}", flush=True)
    embeddings = corpus_embeddings(corpus.texts())
    ingest_chunks = _chunk_count(corpus.ingest)
    held_out = embeddings[ingest_chunks : ingest_chunks + _chunk_count(corpus.held_out)]
    bulk_vectors = embeddings[ingest_chunks + len(held_out) :]
    sentences = query_sentences(corpus.held_out, SEARCH_WARMUP + SEARCH_CALLS)
    warmup_sentences, measured_sentences = sentences[:SEARCH_WARMUP], sentences[SEARCH_WARMUP:]

    # The warm-up document goes first (alone, waited for); the rest is timed.
    warmup_doc, timed_docs = corpus.ingest[0], corpus.ingest[1:]
    messages = [
        timed_docs[i : i + DOCS_PER_MESSAGE] for i in range(0, len(timed_docs), DOCS_PER_MESSAGE)
    ]
    timed_chunks = _chunk_count(timed_docs)
    model = Embedder(num_threads=threads)
    raw_throughput = model_throughput(model, messages, batch)
    print(
        f"model alone: {raw_throughput:.1f} chunks/s ({threads} torch threads, "
        f"batches of {batch}, {timed_chunks} chunks)",
        flush=True,
    )

    run_ids = Run()
    collection = run_ids.collection
    ingest_snapshots, snapshots = run_ids.root / "ingest", run_ids.root / "snapshots"
    gateway_environment = {
        "X0_GATEWAY_REPLICA_ID": f"bench-{run_ids.run_id}",
        "X0_GATEWAY_METRICS_PORT": "0",
    }
    # A caller's key, as any client of the gateway sends one (every call is checked).
    key = await provision_key(
        settings.postgres, GatewaySettings().pepper(), scopes={"rag:read", "rag:write"}
    )
    starts: list[float] = []
    rebuild_starts: list[float] = []
    snapshot_starts: list[float] = []
    deleted = False
    try:
        async with AsyncExitStack() as stack:
            port = stack.enter_context(
                service_process(
                    "x0_gateway", environment=gateway_environment, port_variable="X0_GATEWAY_PORT"
                )
            )
            client = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{port}",
                    timeout=60,
                    headers={"Authorization": f"Bearer {key.key}"},
                )
            )

            # 1. Ingest through Kafka into an empty collection.
            with timed_worker(run_ids.worker_environment(ingest_snapshots), starts):
                await create_collection(client, collection)
                await ingest(client, collection, [[warmup_doc]])
                replayed = await writer_caught_up(
                    settings.kafka, run_ids.worker_environment(ingest_snapshots)[WRITER_GROUP]
                )
                await search_latencies(client, collection, warmup_sentences[:5])
                await asyncio.sleep(2)  # the replica applies the replayed events meanwhile
                ingest_seconds, _ = await ingest(client, collection, messages)
                info = _ok(await client.get(f"/v1/rag/collections/{collection}"), 200)
            expected = timed_chunks + len(warmup_doc.chunks)
            if info["chunks"] != expected:
                msg = f"the collection holds {info['chunks']} chunks, expected {expected}"
                raise RuntimeError(msg)
            ingest_throughput = timed_chunks / ingest_seconds
            print(
                f"ingest: {timed_chunks} chunks in {len(messages)} messages of up to "
                f"{DOCS_PER_MESSAGE} documents, {ingest_seconds:.1f} s "
                f"-> {ingest_throughput:.1f} chunks/s (worker ready in {starts[0]:.1f} s; before "
                f"the timed part its new writer group went through the {replayed} messages "
                "retained in x0.rag.ingest)",
                flush=True,
            )

            # 2. The rest straight into PostgreSQL; a worker rebuilds, then one loads.
            started = time.perf_counter()
            await bulk_insert(dsn, collection, corpus.bulk, bulk_vectors, run_ids.run_id)
            print(
                f"bulk: {len(bulk_vectors)} chunks of {len(corpus.bulk)} documents into "
                f"PostgreSQL in {time.perf_counter() - started:.1f} s",
                flush=True,
            )
            with timed_worker(run_ids.worker_environment(snapshots), rebuild_starts):
                pass  # stopping it writes the snapshot
            with timed_worker(run_ids.worker_environment(snapshots), snapshot_starts):
                copy = copy_snapshot(snapshots, run_ids, run_ids.root / "recall")
                ids, base = await stored_embeddings(dsn, collection)
                print(
                    f"cold start with {len(ids)} chunks: rebuild from PostgreSQL "
                    f"{rebuild_starts[0]:.1f} s, from snapshot {snapshot_starts[0]:.1f} s",
                    flush=True,
                )

                # 3. Search through the gateway, each query a new sentence, in rounds
                #    with the baselines (the worker idles while they run).
                await forget_query_embeddings(settings.redis.url.get_secret_value(), sentences)
                samples = await search_rounds(
                    client,
                    collection,
                    settings.kafka,
                    model=model,
                    index=raw_index(copy, IndexParams().ef),
                    warmup=warmup_sentences,
                    sentences=measured_sentences,
                )
                _ok(await client.delete(f"/v1/rag/collections/{collection}"), 200)
                deleted = True
    finally:
        if not deleted:
            await drop_collection_rows(dsn, collection)
            print(f"collection {collection} deleted from PostgreSQL directly", flush=True)

    # 4. Recall, with no service running.
    index, _ = VectorIndex.load(copy)
    table = recall_table(index, ids, base, held_out)
    shutil.rmtree(run_ids.root, ignore_errors=True)

    gateway_p50, gateway_p99 = (percentile(samples.gateway, q) * 1e3 for q in (0.5, 0.99))
    echo_p50, echo_p99 = (percentile(samples.echo, q) * 1e3 for q in (0.5, 0.99))
    embed_p50, embed_p99 = (percentile(samples.embed, q) * 1e3 for q in (0.5, 0.99))
    knn_p50, knn_p99 = (percentile(samples.knn, q) * 1e3 for q in (0.5, 0.99))
    print(
        f"search (vector, k={K}, {len(measured_sentences)} distinct queries, concurrency 1, "
        f"{SEARCH_ROUNDS} rounds alternating with the baselines), p50 / p99 in ms:\n"
        f"  gateway          {gateway_p50:7.2f} / {gateway_p99:7.2f}\n"
        f"  raw Kafka echo   {echo_p50:7.2f} / {echo_p99:7.2f}\n"
        f"  embed (in-proc.) {embed_p50:7.2f} / {embed_p99:7.2f}  ({threads} torch thread(s))\n"
        f"  knn_query        {knn_p50:7.3f} / {knn_p99:7.3f}  ({len(ids)} vectors, ef "
        f"{IndexParams().ef})\n"
        f"  sum of baselines {echo_p50 + embed_p50 + knn_p50:7.2f}",
        flush=True,
    )
    print(f"recall@{K} on {len(ids)} vectors, {len(held_out)} held-out queries:", flush=True)
    print("  ef   recall(ties)  recall(ids)  ms/query", flush=True)
    for row in table:
        print(
            f"  {row.ef:<4} {row.recall:<13.4f} {row.strict:<12.4f} {row.query_ms:.3f}", flush=True
        )
    print(f"rag section: {time.perf_counter() - section_started:.0f} s", flush=True)

    by_ef = {row.ef: row for row in table}
    recall_baseline = "exact brute-force search (recall 1.0)"
    return [
        Record(
            name="rag.ingest.throughput",
            value=ingest_throughput,
            unit="chunks/s",
            baseline=f"Embedder.embed in-process, {threads} thread(s), batches of {batch}",
            baseline_value=raw_throughput,
            target=">= 0.8",
        ),
        Record(
            name="rag.ann.recall10",
            value=by_ef[IndexParams().ef].recall,
            unit="recall",
            baseline=recall_baseline,
            baseline_value=1.0,
            target=RECALL_TARGET,
        ),
        *(
            Record(
                name=f"rag.ann.recall10.ef{ef}",
                value=row.recall,
                unit="recall",
                baseline=recall_baseline,
                baseline_value=1.0,
                target=RECALL_TARGET,
            )
            for ef, row in by_ef.items()
            if ef != IndexParams().ef
        ),
        Record(
            name="rag.search.gateway.p50",
            value=gateway_p50,
            unit="ms",
            baseline="raw echo p50 + single-sentence embed p50 + knn_query p50",
            baseline_value=echo_p50 + embed_p50 + knn_p50,
            target="<= 1.3",
        ),
        Record(
            name="rag.coldstart.snapshot",
            value=snapshot_starts[0],
            unit="s",
            baseline="worker start with an empty snapshot dir (rebuild from PostgreSQL)",
            baseline_value=rebuild_starts[0],
            target="<= 1.0",
        ),
    ]
