"""``scripts/audit_deps.py`` (make lint) never reads "nothing looked up" as "clean"."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).parents[2] / "scripts" / "audit_deps.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_deps", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_package_skipped_is_not_checked_and_does_not_fail() -> None:
    # What pip-audit reports when no advisory source answers (it still prints
    # "No known vulnerabilities found").
    skipped = {
        "name": "anyio",
        "skip_reason": "Dependency not found on PyPI and could not be audited",
    }
    status, lines = _script().verdict({"dependencies": [skipped, skipped], "fixes": []})
    assert status == 0
    assert lines == [
        "pip-audit: no advisory source reachable — NOT checked "
        "(2 packages skipped: not found at the source)"
    ]


def test_vulnerabilities_fail_and_skipped_packages_are_named() -> None:
    report = {
        "dependencies": [
            {"name": "a", "version": "1.0", "vulns": []},
            {
                "name": "b",
                "version": "2.0",
                "vulns": [{"id": "PYSEC-1", "fix_versions": ["2.1"]}],
            },
            {"name": "c", "skip_reason": "not found"},
        ]
    }
    status, lines = _script().verdict(report)
    assert status == 1
    assert lines == [
        "b 2.0: PYSEC-1 (fixed in 2.1)",
        "pip-audit: 1 packages NOT checked: c",
        "pip-audit: 1 of 2 checked packages vulnerable",
    ]


def test_a_clean_result_says_how_many_were_checked() -> None:
    report = {"dependencies": [{"name": "a", "version": "1.0", "vulns": []}]}
    assert _script().verdict(report) == (0, ["pip-audit: 1 packages checked, none vulnerable"])
