"""``Result.plot()``: equity against buy-and-hold over the drawdown, as a plotly Figure that
Jupyter draws inline (the same downsampled traces as the HTML report)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from barlab.report import charts
from barlab.report.charts import BENCHMARK, STRATEGY, line

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from barlab.result import Result


def plot(result: Result) -> go.Figure:
    """Equity and buy-and-hold (top, with a log-scale toggle) and the drawdown (bottom)."""
    from plotly.subplots import make_subplots

    tl = charts.timeline(result.ts_ns)
    cash = float(result.info["options"]["cash"])
    name = str(result.info.get("strategy", "strategy"))
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.04
    )
    for series, label, color in (
        (result.equity, name, STRATEGY),
        (result.benchmark_equity, "Buy and hold", BENCHMARK),
    ):
        equity = np.asarray(series, dtype=np.float64)
        fig.add_trace(line(label, tl.x, equity, color, legendgroup=label), row=1, col=1)
        under = line(label, tl.x, charts.drawdown(equity, cash), color, legendgroup=label)
        fig.add_trace(under | {"showlegend": False}, row=2, col=1)
    title = f"{name} — {'SYNTHETIC data, ' if result.synthetic else ''}against buy-and-hold"
    fig.update_layout(
        charts.base_layout() | {"height": 560, "margin": {"l": 70, "r": 20, "t": 70, "b": 40}},
        hovermode="x unified", title={"text": title}, updatemenus=charts.log_toggle(),
    )  # fmt: skip
    fig.update_xaxes(type="date", rangebreaks=tl.breaks, **charts.GRID)
    fig.update_yaxes(title_text="Equity (USD)", tickformat="$,.0f", row=1, col=1, **charts.GRID)
    fig.update_yaxes(title_text="Drawdown", tickformat="~%", row=2, col=1, **charts.GRID)
    return fig
