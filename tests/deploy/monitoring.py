"""Helpers of the monitoring configuration tests: the real Debian tools and the files.

The tools come from Debian's ``prometheus`` (promtool, prometheus) and
``prometheus-alertmanager`` (amtool, prometheus-alertmanager) packages, which
``deploy/local-stack/stack.sh up`` installs. A missing tool fails the test: a
configuration nobody validated must not pass as validated.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
ALERTMANAGER_DIR = REPO / "deploy" / "alertmanager"
OBSERVABILITY_DOC = REPO / "docs" / "observability.md"

# Debian names first; the upstream tarballs call Alertmanager plain `alertmanager`.
TOOLS = {
    "promtool": ("promtool",),
    "amtool": ("amtool",),
    "alertmanager": ("prometheus-alertmanager", "alertmanager"),
}


def find_tool(name: str) -> str:
    """The tool's path (``X0_<NAME>`` overrides), or a failed test that says how to get it."""
    override = os.environ.get(f"X0_{name.upper()}")
    if override:
        return override
    for candidate in TOOLS[name]:
        found = shutil.which(candidate) or (
            f"/usr/bin/{candidate}" if Path(f"/usr/bin/{candidate}").exists() else None
        )
        if found:
            return found
    pytest.fail(
        f"{name} is not installed ({' or '.join(TOOLS[name])} not on PATH): install Debian's "
        "`prometheus` and `prometheus-alertmanager` packages (`deploy/local-stack/stack.sh up` "
        "does)"
    )


@dataclass(frozen=True)
class ToolRun:
    """One finished tool run."""

    args: list[str]
    returncode: int
    output: str

    def describe(self) -> str:
        """The command and everything it printed, for an assertion message."""
        return f"$ {' '.join(self.args)}\n(exit {self.returncode})\n{self.output}"


def run_tool(name: str, *args: str | Path, cwd: Path = REPO) -> ToolRun:
    """Run a tool to completion, stdout and stderr together."""
    command = [find_tool(name), *map(str, args)]
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return ToolRun(command, result.returncode, result.stdout + result.stderr)


def load_yaml(path: Path) -> Any:
    """A YAML file's content."""
    return yaml.safe_load(path.read_text())


def rule_files() -> list[Path]:
    """The rule files (the same glob prometheus.yml loads)."""
    return sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))


def rule_test_files() -> list[Path]:
    """The promtool unit-test files."""
    return sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))


def all_rules() -> list[dict[str, Any]]:
    """Every rule (alerting and recording) of every rule file."""
    return [
        rule
        for path in rule_files()
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def alerting_rules() -> list[dict[str, Any]]:
    """Every alerting rule."""
    return [rule for rule in all_rules() if "alert" in rule]
