"""Panel kinds and the dashboard frame, on Grafana's typed builders (grafana-foundation-sdk).

Each function returns a builder; :func:`dashboard` numbers the panels and lets the SDK
lay them out left to right, wrapping at the grid's width.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, timeseries
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from promql import Service

DATASOURCE = model.DataSourceRef(type_val="prometheus", uid="prometheus")
GRID_WIDTH = 24

Panel = timeseries.Panel | stat.Panel
Query = tuple[str, str]  # (expr, legend)


def labels(*by: str) -> str:
    """The legend naming each series by its ``by`` labels: ``{{a}} {{b}}``."""
    return " ".join(f"{{{{{label}}}}}" for label in by)


def _target(expr: str, legend: str, ref: str) -> prometheus.Dataquery:
    return (
        prometheus.Dataquery().ref_id(ref).datasource(DATASOURCE).expr(expr).legend_format(legend)
    )


def graph(
    title: str, description: str, *queries: Query, unit: str = "short", width: int = 12
) -> timeseries.Panel:
    """A graph of one or more (expr, legend) queries."""
    return (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .targets([_target(e, legend, chr(ord("A") + i)) for i, (e, legend) in enumerate(queries)])
        .unit(unit)
        .draw_style(common.GraphDrawStyle.LINE)
        .fill_opacity(10)
        .show_points(common.VisibilityMode.NEVER)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .span(width)
        .height(8)
    )


def number(
    title: str, description: str, expr: str, *, unit: str = "short", red_from: float | None = None
) -> stat.Panel:
    """One number; red from ``red_from`` on when given."""
    steps = [model.Threshold(color="green", value=None)]
    if red_from is not None:
        steps.append(model.Threshold(color="red", value=red_from))
    return (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(_target(expr, "", "A"))
        .unit(unit)
        .thresholds(
            dashboard_builders.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(steps)
        )
        .reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).fields("").values(False)
        )
        .color_mode(common.BigValueColorMode.VALUE)
        .graph_mode(common.BigValueGraphMode.AREA)
        .span(6)
        .height(4)
    )


# -- panel kinds over one service's metrics ------------------------------------


class Kinds:
    """The panel kinds over one service's metrics, each naming its series by ``by``."""

    def __init__(self, service: Service, rate_unit: str = "ops") -> None:
        self.s = service
        self.rate_unit = rate_unit

    def rates(self, title: str, description: str, metric: str, *by: str) -> timeseries.Panel:
        """A counter's rate, in the board's rate unit."""
        query = (self.s.rate(metric, *by), labels(*by))
        return graph(title, description, query, unit=self.rate_unit)

    def ratio(
        self, title: str, description: str, metric: str, part: str, *by: str
    ) -> timeseries.Panel:
        """The share of a counter's rate that matches ``part``."""
        query = (self.s.share(metric, part, *by), labels(*by))
        return graph(title, description, query, unit="percentunit")

    def latency(
        self,
        title: str,
        description: str,
        histogram: str,
        *by: str,
        qs: Sequence[float] = (0.5, 0.99),
    ) -> timeseries.Panel:
        """A histogram's percentiles ``qs`` in seconds; ``pNN`` legends when there are several."""

        def legend(q: float) -> str:
            percentile = f"p{round(q * 100)}" if len(qs) > 1 else ""
            return " ".join(part for part in (percentile, labels(*by)) if part)

        queries = [(self.s.quantile(q, histogram, *by), legend(q)) for q in qs]
        return graph(title, description, *queries, unit="s")

    def spread(self, title: str, description: str, histogram: str) -> timeseries.Panel:
        """A histogram's mean and 95th percentile, for sizes rather than times."""
        mean = (self.s.mean(histogram), "mean")
        return graph(title, description, mean, (self.s.quantile(0.95, histogram), "p95"))

    def gauges(
        self,
        title: str,
        description: str,
        metric: str,
        *by: str,
        op: str = "sum",
        unit: str = "short",
    ) -> timeseries.Panel:
        """A gauge aggregated over replicas with ``op``."""
        query = (self.s.gauge(metric, *by, op=op), labels(*by))
        return graph(title, description, query, unit=unit)

    def responder(self) -> list[Panel]:
        """What every worker's responder counts: messages by outcome and handler latency."""
        return [
            self.rates(
                "Handled messages by type and outcome",
                "Messages handled per second; outcome is ok or the error code replied.",
                "x0_responder_handled_total",
                "type",
                "outcome",
            ),
            self.latency(
                "Handler p99 by type",
                "Time spent in the handler, 99th percentile, per message type.",
                "x0_responder_handler_duration_seconds",
                "type",
                qs=(0.99,),
            ),
        ]


def dashboard(uid: str, title: str, tag: str, panels: Sequence[Panel]) -> model.Dashboard:
    """The read-only frame every x0 dashboard shares, its panels numbered from 1.

    The SDK places each panel right of the last one and starts a new row once a row
    is full (24 wide), but never moves a panel that would stick out: every row's
    widths must add up to 24 (the last row's at most), which the tests check.
    """
    board = (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .tags(["x0", tag])
        .readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .refresh("30s")
        .time("now-1h", "now")
        .timezone("utc")
        .link(
            dashboard_builders.DashboardLink("x0")
            .type(model.DashboardLinkType.DASHBOARDS)
            .tags(["x0"])
            .as_dropdown(True)
        )
        # Written as empty lists, not left out: the panels use no variable.
        .annotations([])
        .variables([])
    )
    for panel_id, panel in enumerate(panels, start=1):
        board.with_panel(panel.id(panel_id))
    return board.build()
