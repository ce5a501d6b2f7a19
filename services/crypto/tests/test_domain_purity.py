"""The domain layer stays pure: no framework, database or cache client imports."""

from __future__ import annotations

from pathlib import Path

import pytest

import x0_crypto.domain
from x0_common.testing.purity import forbidden_imports, imports_of

pytestmark = pytest.mark.unit

FORBIDDEN = {"faststream", "fastapi", "asyncpg", "redis", "aiokafka", "oqs"}
# Only the liboqs backend may import oqs, and only lazily (inside load_oqs).
LAZY_OQS = "backends/liboqs.py"


def test_no_forbidden_imports() -> None:
    root = Path(x0_crypto.domain.__file__).parent
    sources = sorted(root.rglob("*.py"))
    assert len(sources) > 10
    assert forbidden_imports(root, FORBIDDEN, allowed={LAZY_OQS: {"oqs"}}) == {}
    for source in sources:
        relative = source.relative_to(root).as_posix()
        assert "oqs" not in imports_of(source, top_level_only=True), relative
