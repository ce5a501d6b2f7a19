"""ONNX Runtime gives the rag worker's vectors: the model exported with torch, run under
ONNX Runtime with the ``tokenizers`` tokenizer, against the worker's torch embedder
(the reference) on a fixed text set. Needs no image: the tool runs in the workspace with
onnxruntime and onnx added for the run (``uv run --with``), as its docstring says."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
TOOL = REPO / "deploy" / "images" / "embedding_runtimes.py"

pytestmark = [pytest.mark.timeout(900)]


def test_onnx_runtime_vectors_match_torch_to_cosine_0_99999() -> None:
    # `uv run` names its own binary in UV for what it runs.
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "no uv: run the tests with `python3 -m uv run` (make test-images does)"
    run = subprocess.run(
        [
            uv,
            "run",
            "--frozen",
            "--with",
            "onnxruntime==1.32.0",
            "--with",
            "onnx",
            "python",
            str(TOOL),
            "--vectors-only",
        ],
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
        cwd=REPO,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    found = re.search(r"lowest cosine over (\d+) texts: ([0-9.]+)", run.stdout)
    assert found, run.stdout + run.stderr[-3000:]
    assert int(found.group(1)) >= 10
    assert float(found.group(2)) >= 0.99999, run.stdout
    assert run.returncode == 0, run.stdout + run.stderr[-3000:]
