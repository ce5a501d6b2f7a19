"""The domain layer stays pure: no framework, database or cache client imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import x0_crypto.domain

pytestmark = pytest.mark.unit

FORBIDDEN = {"faststream", "fastapi", "asyncpg", "redis", "aiokafka", "oqs"}
# Only the liboqs backend may import oqs, and only lazily (inside load_oqs).
LAZY_OQS = "backends/liboqs.py"


def _imports(tree: ast.Module, *, top_level_only: bool) -> set[str]:
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_forbidden_imports() -> None:
    root = Path(x0_crypto.domain.__file__).parent
    sources = sorted(root.rglob("*.py"))
    assert len(sources) > 10
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        relative = source.relative_to(root).as_posix()
        everywhere = _imports(tree, top_level_only=False)
        allowed = {"oqs"} if relative == LAZY_OQS else set()
        assert not (everywhere & FORBIDDEN) - allowed, relative
        assert "oqs" not in _imports(tree, top_level_only=True), relative
