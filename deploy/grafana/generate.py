"""The x0 Grafana dashboards as code: writes deploy/grafana/dashboards/<name>.json.

Run ``python3 -m uv run --frozen python deploy/grafana/generate.py`` after a change
and commit the JSON it writes (``--check`` only reports stale files).
tests/deploy/test_dashboards.py fails when the two differ, and the live-Prometheus test
evaluates every query from :func:`panel_queries`.

Beside this script, by role: ``promql.py`` builds the queries (and states their
rules), ``panels.py`` the panel kinds on grafana-foundation-sdk's builders, and
``boards/`` holds one module per dashboard. They are imported as top-level modules,
found because a script's folder leads ``sys.path``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from boards import DASHBOARDS
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from panels import GRID_WIDTH
from promql import metric_names

__all__ = ["DASHBOARDS", "GRID_WIDTH", "main", "metric_names", "panel_queries", "render"]

OUT_DIR = Path(__file__).resolve().parent / "dashboards"


def _boards() -> dict[str, dict[str, Any]]:
    """File name -> every dashboard as the plain JSON object the SDK encodes."""
    return {
        f"{name}.json": json.loads(json.dumps(build(), cls=JSONEncoder))
        for name, build in DASHBOARDS.items()
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard, exactly as committed."""
    return {
        name: json.dumps(board, indent=2, ensure_ascii=False) + "\n"
        for name, board in _boards().items()
    }


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) of every panel target, ``$__rate_interval`` kept."""
    return [
        (board["uid"], panel["title"], target["expr"])
        for board in _boards().values()
        for panel in board["panels"]
        for target in panel["targets"]
    ]


def main(argv: Sequence[str]) -> int:
    """Write the dashboards; with ``--check``, only list the stale ones (exit 1 if any)."""
    check = "--check" in argv
    rendered = render()
    stale = [name for name, text in rendered.items() if _differs(OUT_DIR / name, text)]
    if not check:
        OUT_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            (OUT_DIR / name).write_text(text, encoding="utf-8")
    sys.stdout.write(f"{'stale' if check else 'updated'}: {', '.join(stale) or 'none'}\n")
    return 1 if check and stale else 0


def _differs(path: Path, text: str) -> bool:
    return not path.exists() or path.read_text(encoding="utf-8") != text


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
