"""The PromQL the dashboards run, built per service.

Query rules:
- only ``x0_`` metric names the services declare, every selector filtered by ``service``;
- no Grafana variable but ``$__rate_interval`` (the live test substitutes a window);
- a panel about something bad (5xx, failures, timeouts, dead letters) shows a zero
  series while nothing bad happened, so that an empty panel always means a broken
  query. Where the bad outcome is a label of a counter of all traffic,
  :meth:`Service.share` takes ``part or 0 * whole`` over that one metric; where a
  counter appears only on its first event, :func:`zero_until_seen` pads it with zeros
  shaped like a traffic metric of the same service. Such a counter's own name is then
  proven by the unit test (declared in source) and by Prometheus's metadata, which
  lists a family before its first sample; :func:`metric_names` lists the names.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

WINDOW = "$__rate_interval"


def _sum(by: Sequence[str]) -> str:
    return f"sum by ({', '.join(by)}) " if by else "sum"


class Service:
    """Query builders whose selectors all carry ``service="<name>"``."""

    def __init__(self, name: str) -> None:
        self.name = name

    def sel(self, metric: str, where: str = "") -> str:
        """``metric{service="...",<where>}``; ``where`` holds extra matchers."""
        extra = f",{where}" if where else ""
        return f'{metric}{{service="{self.name}"{extra}}}'

    def gauge(self, metric: str, *by: str, op: str = "sum") -> str:
        """A gauge aggregated over replicas (``op``) by ``by``."""
        grouping = f" by ({', '.join(by)}) " if by else ""
        return f"{op}{grouping}({self.sel(metric)})"

    def rate(self, metric: str, *by: str, where: str = "") -> str:
        """A counter's per-second rate, summed by ``by``."""
        return f"{_sum(by)}(rate({self.sel(metric, where)}[{WINDOW}]))"

    def share(self, metric: str, part: str, *by: str) -> str:
        """The fraction of a counter's rate that also matches ``part``; 0 until one does."""
        whole = self.rate(metric, *by)
        return f"({self.rate(metric, *by, where=part)} or 0 * {whole}) / {whole}"

    def quantile(self, q: float, metric: str, *by: str) -> str:
        """A percentile from a histogram's buckets."""
        return f"histogram_quantile({q}, {self.rate(f'{metric}_bucket', 'le', *by)})"

    def shared(self, metric: str, keys: Sequence[str], *by: str, where: str = "") -> str:
        """A gauge every replica exports in full: one copy per ``keys``, summed by ``by``.

        Replicas that each read the whole state (telemetry's node gauges, the lag
        exporter) export the same series; ``max by (keys)`` counts each once.
        """
        return f"{_sum(by)}(max by ({', '.join(keys)}) ({self.sel(metric, where)}))"

    def mean(self, metric: str) -> str:
        """A histogram's mean observation over the window."""
        return f"{self.rate(f'{metric}_sum')} / {self.rate(f'{metric}_count')}"


def zero_until_seen(expr: str, like: str, *on: str) -> str:
    """``expr``, or zeros shaped like ``like`` (matched ``on`` labels) while it has no series.

    For counters that appear only with their first event: ``like`` is a metric present
    whenever the service has traffic, so the panel shows 0 rather than nothing.
    """
    return f"{expr} or on ({', '.join(on)}) 0 * {like}"


def metric_names(expr: str) -> set[str]:
    """The ``x0_`` metric names an expression reads (quoted label values ignored)."""
    unquoted = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(re.findall(r"\b(x0_[a-z0-9_]+)\b", unquoted))
