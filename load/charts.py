"""PNG charts of a run: the callers' view per class, and the services' view from Prometheus.

- ``classes.png``: per caller class, latency percentiles (p50/p95/p99 of the successful
  requests, per ``BUCKET_S`` bucket) and throughput (ok, errors, 429s per second, with
  the offered rate), over the run; the ramp-up before every user spawned is shaded;
- ``service.png``: the panels of load/prometheus.py over the same window.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only, no display

import matplotlib.pyplot as plt

from load import prometheus
from load.stats import Record

BUCKET_S = 5.0


def _quantile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def class_charts(
    records: list[Record],
    offered: dict[str, float],
    *,
    start: float,
    steady: float | None,
    end: float,
    out: Path,
) -> Path:
    """Draw ``classes.png`` from ``start`` (the test's) to ``end`` (the run time's); the
    x axis is seconds since ``start``, ramp-up (until ``steady``) shaded."""
    classes = list(offered)
    figure, axes = plt.subplots(
        len(classes), 2, figsize=(13, 3.2 * len(classes)), squeeze=False, layout="constrained"
    )
    for row, caller_class in enumerate(classes):
        mine = [
            r
            for r in records
            if r.caller_class == caller_class and r.phase == "task" and start <= r.time <= end
        ]
        latency, rate = axes[row]
        buckets: dict[int, list[Record]] = {}
        for record in mine:
            buckets.setdefault(int((record.time - start) // BUCKET_S), []).append(record)
        xs = sorted(buckets)
        times = [(b + 0.5) * BUCKET_S for b in xs]
        for fraction, style in ((0.5, "-"), (0.95, "--"), (0.99, ":")):
            values = [
                _quantile(ok, fraction)
                if (ok := [r.ms for r in buckets[b] if r.outcome == "ok"])
                else float("nan")
                for b in xs
            ]
            latency.plot(times, values, style, label=f"p{round(fraction * 100)}")
        latency.set_title(f"{caller_class}: latency (ok requests, {BUCKET_S:g} s buckets)")
        latency.set_ylabel("ms")
        for outcome, colour in (
            ("ok", "tab:green"),
            ("error", "tab:red"),
            ("rate_limited", "tab:orange"),
        ):
            values = [
                sum(1 for r in buckets[b] if r.outcome == outcome)
                / (min(end - start, (b + 1) * BUCKET_S) - b * BUCKET_S)
                for b in xs
            ]
            if any(values):
                rate.plot(times, values, color=colour, label=outcome)
        rate.axhline(offered[caller_class], color="grey", linestyle="--", label="offered")
        rate.set_title(f"{caller_class}: throughput")
        rate.set_ylabel("req/s")
        for axis in (latency, rate):
            axis.set_xlabel("s since start")
            axis.set_xlim(0, end - start)
            if steady is not None:
                axis.axvspan(0, steady - start, color="grey", alpha=0.15, lw=0)
            axis.grid(alpha=0.3)
            axis.legend(loc="upper right", fontsize="small")
    path = out / "classes.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def service_chart(base: str, *, start: float, end: float, out: Path) -> tuple[Path, list[str]]:
    """Draw ``service.png`` from the Prometheus at ``base``; returns notes on empty panels."""
    step = max(2.0, (end - start) / 200)
    window = prometheus.window()
    panels = prometheus.panels(window)
    columns = 2
    figure, axes = plt.subplots(
        math.ceil(len(panels) / columns),
        columns,
        figsize=(16, 3.4 * math.ceil(len(panels) / columns)),
        squeeze=False,
        layout="constrained",
    )
    notes = []
    for axis, panel in zip(axes.flat, panels, strict=False):
        series = prometheus.query_range(base, panel, start, end, step)
        for index, (name, points) in enumerate(sorted(series.items())):
            # Ten colours, then the same colours dashed, then dotted: no two lines alike.
            style = ("-", "--", ":")[index // 10 % 3]
            xs, ys = [t - start for t, _ in points], [v for _, v in points]
            axis.plot(xs, ys, style, label=name)
        if series:
            # Beside the panel, not over its lines (there are a dozen routes).
            axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="xx-small")
        else:
            if panel.empty == "no data":
                notes.append(f"service.png: no data for {panel.title!r}")
            axis.text(0.5, 0.5, panel.empty, ha="center", va="center", transform=axis.transAxes)
        axis.set_title(panel.title)
        axis.set_ylabel(panel.unit)
        axis.set_xlabel("s since start")
        axis.set_xlim(0, end - start)
        axis.grid(alpha=0.3)
    figure.suptitle(f"service side, from {base} ({window} rate windows)")
    path = out / "service.png"
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path, notes
