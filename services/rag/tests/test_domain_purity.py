"""The domain layer stays pure: no framework, database, cache or model imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import x0_rag.domain

pytestmark = pytest.mark.unit

FORBIDDEN = {"faststream", "fastapi", "asyncpg", "redis", "aiokafka", "torch", "hnswlib"}


def test_no_forbidden_imports() -> None:
    root = Path(x0_rag.domain.__file__).parent
    sources = sorted(root.rglob("*.py"))
    assert len(sources) >= 6
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
        assert not imported & FORBIDDEN, source.name
