"""torch or ONNX Runtime in the rag image: the same vectors? how fast? how big?

    OPENBLAS_NUM_THREADS=1 python3 -m uv run --frozen --with onnxruntime==1.32.0 \\
        --with onnx python deploy/images/embedding_runtimes.py [--threads 2] \\
        [--onnx-out model.onnx] [--vectors-only]

Exports the packaged all-MiniLM-L6-v2 with torch (``torch.onnx.export``, the TorchScript
exporter) as one graph that ends in the rag worker's pooling: mean over the attention
mask, then L2 normalisation, so ONNX Runtime returns the final vectors. Tokenisation is
``tokenizers`` (the model's tokenizer.json, truncation at 256, as the worker does).
Then, against the reference (``x0_rag.adapters.embedder.Embedder``, torch):

- the lowest cosine over a fixed text set (short, long, unicode, truncated texts);
- single-query latency (median and p90 of 200 one-text calls) and throughput (512 short
  sentences, 96 paragraphs; best of 3), both runtimes with the same thread count;
- the installed size of each runtime's distributions in this environment (torch and
  the nvidia-* CUDA packages it cannot leave out; onnxruntime and what it adds).

Prints one table; exits 1 when a cosine is below 0.99999.
"""

# A command-line tool: its output is the table.
# ruff: noqa: T201

from __future__ import annotations

import argparse
import importlib.metadata
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from tokenizers import Tokenizer
from transformers import AutoModel

from x0_rag.adapters.embedder import MAX_LENGTH, Embedder, packaged_model_path

Vectors = npt.NDArray[np.float32]
COSINE_FLOOR = 0.99999
SENTENCES = [
    "The weather is lovely today.",
    "Open a file with open() and read its lines.",
    "Post-quantum key exchange with ML-KEM-768.",
    "Kafka keeps the partitions' offsets per consumer group.",
    "Grüße aus Köln: naïve café, 東京, Ελληνικά, emoji 🚀.",
    "a",
    "",
    "Sunny and warm weather all week in the south.",
]
PARAGRAPH = (
    "A consumer group reads each partition of a topic with one member at a time; when a "
    "member leaves, its partitions are handed to the others after a rebalance, and the "
    "offsets it committed tell the new owner where to resume. "
)
TEXTS = [*SENTENCES, PARAGRAPH, PARAGRAPH * 8]  # the last one is truncated at 256 tokens
CUDA_PREFIXES = ("nvidia-", "triton")


class Pooled(torch.nn.Module):
    """BERT, then the worker's mean pooling and L2 normalisation, as one graph."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.bert = AutoModel.from_pretrained(path, local_files_only=True).eval()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=1)


def export(path: Path, target: Path) -> None:
    example = torch.ones((2, 8), dtype=torch.int64)
    torch.onnx.export(
        Pooled(path),
        (example, example),
        str(target),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )


class OnnxEmbedder:
    """The exported graph under ONNX Runtime, tokenised by ``tokenizers``."""

    def __init__(self, model: Path, tokenizer: Path, threads: int) -> None:
        import onnxruntime  # noqa: PLC0415 - only this tool needs it

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self.tokenizer = Tokenizer.from_file(str(tokenizer))
        self.tokenizer.enable_truncation(MAX_LENGTH)
        self.tokenizer.no_padding()

    def embed(self, texts: Sequence[str], micro_batch: int = 16) -> Vectors:
        encoded = self.tokenizer.encode_batch(list(texts))
        result = np.empty((len(texts), 384), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda row: -len(encoded[row].ids))
        for first in range(0, len(order), micro_batch):
            rows = order[first : first + micro_batch]
            width = max(len(encoded[row].ids) for row in rows)
            ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros((len(rows), width), dtype=np.int64)
            for i, row in enumerate(rows):
                ids[i, : len(encoded[row].ids)] = encoded[row].ids
                mask[i, : len(encoded[row].ids)] = 1
            (vectors,) = self.session.run(None, {"input_ids": ids, "attention_mask": mask})
            result[rows] = vectors
        return result


def timings(embed: Callable[[Sequence[str]], Vectors]) -> dict[str, float]:
    for _ in range(20):
        embed(["warm-up query"])
    single = []
    for i in range(200):
        started = time.perf_counter()
        embed([f"how do I rotate the key number {i}?"])
        single.append((time.perf_counter() - started) * 1000)
    sentences = [f"{SENTENCES[i % 5]} ({i})" for i in range(512)]
    paragraphs = [f"{PARAGRAPH} ({i})" for i in range(96)]
    rates = {}
    for name, texts in (("sentences/s", sentences), ("paragraphs/s", paragraphs)):
        best = min(_seconds(embed, texts) for _ in range(3))
        rates[name] = len(texts) / best
    single.sort()
    return {
        "single p50 ms": statistics.median(single),
        "single p90 ms": single[int(len(single) * 0.9)],
        **rates,
    }


def _seconds(embed: Callable[[Sequence[str]], Vectors], texts: list[str]) -> float:
    started = time.perf_counter()
    embed(texts)
    return time.perf_counter() - started


def closure(root: str, stop: frozenset[str] = frozenset()) -> set[str]:
    """``root`` and every distribution it requires, transitively (markers evaluated),
    not following into ``stop``."""
    from packaging.requirements import Requirement  # noqa: PLC0415

    seen, todo = set(), [root]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen or name in stop:
            continue
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for line in requires:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def installed_mb(names: set[str]) -> float:
    """The installed size of these distributions in this environment, in MB."""
    total = 0
    for dist in importlib.metadata.distributions():
        if dist.metadata["Name"].lower().replace("_", "-") not in names:
            continue
        for file in dist.files or []:
            located = Path(str(file.locate()))
            if located.is_file():
                total += located.stat().st_size
    return total / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--onnx-out", type=Path, help="keep the exported model here")
    parser.add_argument(
        "--vectors-only", action="store_true", help="compare the vectors, skip the timings"
    )
    args = parser.parse_args()
    path = packaged_model_path()
    with tempfile.TemporaryDirectory() as scratch:
        model = args.onnx_out or Path(scratch) / "model.onnx"
        started = time.perf_counter()
        export(path, model)
        print(
            f"exported {model.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s"
        )
        reference = Embedder(path, num_threads=args.threads)
        onnx = OnnxEmbedder(model, path / "tokenizer.json", args.threads)
        expected, got = reference.embed(TEXTS), onnx.embed(TEXTS)
        cosines = np.sum(expected * got, axis=1) / (
            np.linalg.norm(expected, axis=1) * np.linalg.norm(got, axis=1)
        )
        lowest = float(cosines.min())
        print(f"lowest cosine over {len(TEXTS)} texts: {lowest:.8f} (floor {COSINE_FLOOR})")
        if args.vectors_only:
            return 0 if lowest >= COSINE_FLOOR else 1
        results = {"torch": timings(reference.embed), "onnxruntime": timings(onnx.embed)}
    # What each runtime adds to the image: its closure minus what the rest of x0-rag
    # needs anyway (numpy, the tokenizer...).
    from packaging.requirements import Requirement  # noqa: PLC0415

    direct = {Requirement(line).name for line in importlib.metadata.requires("x0-rag") or []}
    rest = set().union(*(closure(name, frozenset({"torch"})) for name in direct - {"torch"}))
    torch_side = closure("torch") - rest
    ort_side = closure("onnxruntime") - rest
    torch_mb, ort_mb = installed_mb(torch_side), installed_mb(ort_side)
    print(f"\n{args.threads} threads        {'torch':>12} {'onnxruntime':>12}")
    for key in results["torch"]:
        print(f"{key:<18} {results['torch'][key]:>12.1f} {results['onnxruntime'][key]:>12.1f}")
    print(f"{'installed MB':<18} {torch_mb:>12.0f} {ort_mb:>12.0f}")
    print(f"\ntorch side: {', '.join(sorted(torch_side))}")
    print(f"onnxruntime side: {', '.join(sorted(ort_side))}")
    return 0 if lowest >= COSINE_FLOOR else 1


if __name__ == "__main__":
    sys.exit(main())
