"""The domain layer stays pure: no framework, database, cache or Kafka client imports."""

from __future__ import annotations

from pathlib import Path

import pytest

import x0_telemetry.domain
from x0_common.testing.purity import forbidden_imports

pytestmark = pytest.mark.unit

FORBIDDEN = {"faststream", "fastapi", "asyncpg", "redis", "aiokafka"}


def test_no_forbidden_imports() -> None:
    root = Path(x0_telemetry.domain.__file__).parent
    assert len(list(root.rglob("*.py"))) >= 5
    assert forbidden_imports(root, FORBIDDEN) == {}
