"""The ``x0 rag ingest`` progress bar, drawn in a pseudo-terminal against the real
gateway and RAG worker, and the run completing."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from .client_support import gateway_url, in_terminal, ok

pytestmark = pytest.mark.e2e
__all__ = ["gateway_url"]  # the fixture, used by name


async def test_the_ingest_progress_bar_renders_in_a_terminal(
    gateway_url: str, tmp_path: Path
) -> None:
    name = f"e2e-pty-{uuid.uuid4().hex[:8]}"
    source = tmp_path / "docs.jsonl"
    lines = [
        json.dumps({"id": f"d{i}", "text": f"Document number {i} about partitions."})
        for i in range(120)
    ]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    await ok(gateway_url, "rag", "collections", "create", name)
    try:
        code, screen = await in_terminal(gateway_url, "rag", "ingest", str(source), "-c", name)
        assert code == 0, screen
        assert "\x1b[" in screen, "a terminal gets ANSI cursor and colour codes"
        assert "━" in screen, "the bar is drawn"
        assert "120/120" in screen, "and ends full"
        assert "documents_per_second" not in screen, "a human summary, not JSON"
    finally:
        await ok(gateway_url, "rag", "collections", "delete", name)
