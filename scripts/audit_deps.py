"""Known vulnerabilities of the locked dependencies (``make lint``), said plainly.

Runs pip-audit on the requirements ``uv export`` made from ``uv.lock`` (``make lint``
exports every package and group, the workspace's own members left out), reading its
JSON report
rather than its last line: pip-audit prints "No known vulnerabilities found" even when
it could look up nothing at all (no advisory source reachable: every package is then
skipped as "not found"). So:

- every package audited, none vulnerable: ``pip-audit: N packages checked, none vulnerable``;
- vulnerabilities: each one is printed, exit 1;
- no advisory source reachable (every package skipped, or a network error):
  ``pip-audit: no advisory source reachable — NOT checked``, exit 0 (CI must not fail
  for lack of network, and must not claim a clean result either);
- some packages skipped: the checked count, the skipped ones named, exit 0.

Usage: ``uv run python scripts/audit_deps.py REQUIREMENTS`` (``--service osv`` to ask
OSV instead of PyPI).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# What a failure to reach the advisory source looks like in pip-audit's output.
NETWORK_ERRORS = (
    "ConnectionError",
    "NewConnectionError",
    "Max retries exceeded",
    "NameResolutionError",
    "Temporary failure in name resolution",
    "ConnectTimeout",
    "ReadTimeout",
    "ProxyError",
)
NOT_CHECKED = "pip-audit: no advisory source reachable — NOT checked"


def audit(requirements: Path, report: Path, service: str) -> subprocess.CompletedProcess[str]:
    """pip-audit on pinned requirements, its JSON report written to ``report``."""
    options = ["--no-deps", "--disable-pip", "--progress-spinner", "off", "--format", "json"]
    command = [sys.executable, "-m", "pip_audit", "--requirement", str(requirements), *options]
    command += ["--vulnerability-service", service, "--output", str(report)]
    # The command is this script's own; only paths and a choice from argparse go in.
    return subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603


def verdict(report: dict[str, Any]) -> tuple[int, list[str]]:
    """Exit status and lines to print for a pip-audit JSON report."""
    packages = report.get("dependencies", [])
    skipped = [p for p in packages if "skip_reason" in p]
    checked = [p for p in packages if "skip_reason" not in p]
    if not checked:
        return 0, [f"{NOT_CHECKED} ({len(skipped)} packages skipped: not found at the source)"]
    lines = []
    vulnerable = [p for p in checked if p.get("vulns")]
    for package in vulnerable:
        for vuln in package["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            lines.append(f"{package['name']} {package['version']}: {vuln['id']} (fixed in {fixed})")
    if skipped:
        names = ", ".join(sorted(p["name"] for p in skipped))
        lines.append(f"pip-audit: {len(skipped)} packages NOT checked: {names}")
    if vulnerable:
        lines.append(f"pip-audit: {len(vulnerable)} of {len(checked)} checked packages vulnerable")
        return 1, lines
    lines.append(f"pip-audit: {len(checked)} packages checked, none vulnerable")
    return 0, lines


def main() -> int:
    """Audit the lock; print the verdict; 1 only for vulnerabilities (or a broken run)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", type=Path, help="pinned requirements (uv export)")
    parser.add_argument("--service", default="pypi", choices=["pypi", "osv"])
    arguments = parser.parse_args()
    requirements: Path = arguments.requirements
    service: str = arguments.service
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "report.json"
        finished = audit(requirements, report, service)
        if not report.exists():
            said = finished.stdout + finished.stderr
            if any(mark in said for mark in NETWORK_ERRORS):
                print(f"{NOT_CHECKED} ({service}: network error)")  # noqa: T201 - a CLI
                return 0
            print(said, file=sys.stderr)  # noqa: T201 - a CLI
            return finished.returncode or 1
        status, lines = verdict(json.loads(report.read_text()))
    for line in lines:
        print(line)  # noqa: T201 - a CLI
    return status


if __name__ == "__main__":
    raise SystemExit(main())
