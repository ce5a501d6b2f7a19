"""Known-answer files in ``data/``, as pytest parameters."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"

# ACVP fields holding hex; the rest (tcId, testPassed, reason, deferred) stay as they are.
#: One decoded ACVP test case: hex fields as bytes, the rest as parsed.
Case = dict[str, Any]

_HEX_FIELDS = frozenset(
    {"d", "z", "ek", "dk", "c", "k", "m", "seed", "pk", "sk", "message", "context", "signature"}
)


@cache
def load(filename: str) -> dict[str, Any]:
    """A vector file, parsed once per test session."""
    result: dict[str, Any] = json.loads((DATA / filename).read_text())
    return result


def _decoded(test: dict[str, Any]) -> dict[str, Any]:
    return {key: bytes.fromhex(v) if key in _HEX_FIELDS else v for key, v in test.items()}


def acvp(
    filename: str, *, function: str | None = None, sets: tuple[str, ...] | None = None
) -> list[Any]:
    """``pytest.param(parameter_set, case)`` for each ACVP test case, hex decoded to bytes.

    ``function`` picks encapDecap groups (``encapsulation``, ``decapsulationKeyCheck``
    ...); ``sets`` keeps only those parameter sets.
    """
    params = []
    for group in load(filename)["testGroups"]:
        if function is not None and group.get("function") != function:
            continue
        if sets is not None and group["parameterSet"] not in sets:
            continue
        for test in group["tests"]:
            case_id = f"{group['parameterSet']}-tc{test['tcId']}"
            params.append(pytest.param(group["parameterSet"], _decoded(test), id=case_id))
    return params


def xwing() -> list[Any]:
    """The draft's X-Wing vectors, hex decoded."""
    vectors = load("xwing_vectors.json")["vectors"]
    return [
        pytest.param({key: bytes.fromhex(v) for key, v in vector.items()}, id=f"vector{i}")
        for i, vector in enumerate(vectors)
    ]
