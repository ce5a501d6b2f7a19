"""The domain layer stays pure: no framework, database, cache or model imports."""

from __future__ import annotations

from pathlib import Path

import pytest

import x0_rag.domain
from x0_common.testing.purity import forbidden_imports

pytestmark = pytest.mark.unit

FORBIDDEN = {"faststream", "fastapi", "asyncpg", "redis", "aiokafka", "torch", "hnswlib"}


def test_no_forbidden_imports() -> None:
    root = Path(x0_rag.domain.__file__).parent
    assert len(list(root.rglob("*.py"))) >= 6
    assert forbidden_imports(root, FORBIDDEN) == {}
