"""Benchmark records, the results file and the printed table.

``bench/results/latest.json`` holds ``{"machine": {...}, "results": [...]}``, one
record per figure. Running one section replaces only that section's records.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "latest.json"


@dataclass(frozen=True)
class Record:
    """One measured figure against its same-run baseline."""

    name: str
    value: float
    unit: str
    baseline: str
    baseline_value: float
    target: str  # e.g. "<= 1.3": the bound on ratio = value / baseline_value

    @property
    def ratio(self) -> float:
        """value / baseline_value."""
        return self.value / self.baseline_value

    @property
    def met(self) -> bool:
        """Whether the ratio satisfies the target."""
        operator, bound = self.target.split()
        limit = float(bound)
        return self.ratio <= limit if operator == "<=" else self.ratio >= limit

    def as_json(self) -> dict[str, object]:
        """The record as stored in the results file."""
        return {**asdict(self), "ratio": round(self.ratio, 4), "met": self.met}


def machine() -> dict[str, object]:
    """What the figures were measured on."""
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        java = subprocess.run(
            ["java", "-version"], capture_output=True, text=True, check=False, timeout=10
        ).stderr.splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        java = ""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "java": java,
    }


def save(section: str, records: list[Record]) -> None:
    """Replace ``section``'s records in the results file, keeping the others."""
    existing: list[dict[str, object]] = []
    if RESULTS.exists():
        existing = json.loads(RESULTS.read_text()).get("results", [])
    kept = [r for r in existing if not str(r["name"]).startswith(f"{section}.")]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine(), "results": kept + [r.as_json() for r in records]}
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")


def print_table(records: list[Record]) -> None:
    """Print the records as an aligned table."""
    header = ("name", "value", "baseline", "baseline value", "ratio", "target", "met")
    rows = [
        (
            r.name,
            f"{r.value:.3f} {r.unit}",
            r.baseline,
            f"{r.baseline_value:.3f} {r.unit}",
            f"{r.ratio:.3f}",
            r.target,
            "yes" if r.met else "NO",
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))
