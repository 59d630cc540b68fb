"""The report's charts of returns by period and by trade: monthly heatmap, yearly bars,
distributions, and each symbol's share of the P&L.

Period returns are compounded bar returns (:func:`barlab.metrics.aggregate_returns`), so the
months compound to the total return in the metrics table. Histograms are binned here, so a run
with 50,000 trades costs 40 bars in the page, not 50,000 numbers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from barlab import metrics
from barlab.report.charts import BENCHMARK, GRID, STRATEGY, Timeline, base_layout, to_spec
from barlab.report.page import Chart

if TYPE_CHECKING:
    from barlab.result import Result

BINS = 40
MIN_DAYS_FOR_DAILY = 20
"""Fewer trading days than this and the period-return histogram uses bar returns."""
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _returns(result: Result, equity: np.ndarray) -> np.ndarray:
    cash = float(result.info["options"]["cash"])
    return metrics.returns_from_equity(np.asarray(equity, np.float64), initial_cash=cash)


def _months(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each day (days since 1970-01-01)."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def monthly_heatmap(result: Result, tl: Timeline) -> Chart:
    keys, monthly = metrics.aggregate_returns(_returns(result, result.equity), _months(tl.days))
    years = np.arange(keys[0] // 12, keys[-1] // 12 + 1) if len(keys) else np.arange(0)
    z = np.full((len(years), 12), np.nan)
    z[keys // 12 - years[0], keys % 12] = monthly
    labels = [str(1970 + int(y)) for y in years]
    data = [
        {"type": "heatmap", "x": list(_MONTHS), "y": labels, "z": z, "zmid": 0.0,
         "colorscale": [[0.0, "#b3261e"], [0.5, "#f7f7f7"], [1.0, "#1b6e3a"]],
         "texttemplate": "%{z:.1%}", "hovertemplate": "%{x} %{y}: %{z:.2%}<extra></extra>",
         "xgap": 2, "ygap": 2, "colorbar": {"tickformat": "~%", "thickness": 12}}
    ]  # fmt: skip
    lay = base_layout() | {
        "height": 120 + 36 * len(years),
        "xaxis": {"side": "top", "showgrid": False, "fixedrange": True},
        "yaxis": {"autorange": "reversed", "type": "category", "showgrid": False,
                  "fixedrange": True},
        "margin": {"l": 60, "r": 20, "t": 40, "b": 20},
    }  # fmt: skip
    return Chart(
        "monthly", "Monthly returns", to_spec(data, lay),
        "Each month compounds its bar returns (New York calendar); blank: no bars that month.",
    )  # fmt: skip


def yearly_bars(result: Result, tl: Timeline) -> Chart:
    years = _months(tl.days) // 12
    data = []
    for name, equity, color in (
        (str(result.info.get("strategy", "strategy")), result.equity, STRATEGY),
        ("Buy and hold", result.benchmark_equity, BENCHMARK),
    ):
        keys, yearly = metrics.aggregate_returns(_returns(result, equity), years)
        data.append(
            {"type": "bar", "name": name, "x": [str(1970 + int(k)) for k in keys], "y": yearly,
             "marker": {"color": color}, "texttemplate": "%{y:.1%}", "textposition": "outside",
             "hovertemplate": "%{x}: %{y:.2%}<extra>" + name + "</extra>"}
        )  # fmt: skip
    lay = base_layout() | {
        "barmode": "group",
        "bargap": 0.6 if len(np.unique(years)) < 3 else 0.25,
        "xaxis": {"type": "category", **GRID, "showgrid": False},
        "yaxis": {"title": {"text": "Return"}, "tickformat": "~%", **GRID},
    }
    return Chart("yearly", "Yearly returns", to_spec(data, lay), "Partial years count as they are.")


def _histogram(values: dict[str, np.ndarray], colors: dict[str, str]) -> list[dict]:
    """Bar traces of counts on shared bins, one per series (NaN and inf left out)."""
    clean = {k: v[np.isfinite(v)] for k, v in values.items()}
    pooled = np.concatenate([v for v in clean.values()] or [np.empty(0)])
    if pooled.size == 0:
        return []
    lo, hi = float(pooled.min()), float(pooled.max())
    edges = np.linspace(lo, hi if hi > lo else lo + 1e-9, BINS + 1)
    centers, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    traces = []
    for name, v in clean.items():
        counts, _ = np.histogram(v, bins=edges)
        traces.append(
            {"type": "bar", "name": name, "x": centers, "y": counts.astype(np.float64),
             "width": width, "opacity": 0.65, "marker": {"color": colors[name]},
             "hovertemplate": "%{x:.2%}: %{y:,} <extra>" + name + "</extra>"}
        )  # fmt: skip
    return traces


def period_distribution(result: Result, tl: Timeline) -> Chart:
    name = str(result.info.get("strategy", "strategy"))
    n_days = len(np.unique(tl.days))
    daily = n_days >= MIN_DAYS_FOR_DAILY
    series = {}
    for label, equity in ((name, result.equity), ("Buy and hold", result.benchmark_equity)):
        r = _returns(result, equity)
        series[label] = metrics.aggregate_returns(r, tl.days)[1] if daily else r[r != 0]
    data = _histogram(series, {name: STRATEGY, "Buy and hold": BENCHMARK})
    unit = "Daily return" if daily else "Bar return (bars that moved)"
    lay = base_layout() | {
        "barmode": "overlay",
        "xaxis": {"title": {"text": unit}, "tickformat": "~%", **GRID},
        "yaxis": {"title": {"text": "Count"}, **GRID},
    }
    note = "" if daily else f"Only {n_days} trading days: bar returns are shown instead."
    return Chart("period-returns", "Distribution of period returns", to_spec(data, lay), note)


def trade_distribution(result: Result) -> Chart | None:
    trades = result.trades
    if trades.height == 0:
        return None
    name = str(result.info.get("strategy", "strategy"))
    data = _histogram({name: trades["return"].to_numpy()}, {name: STRATEGY})
    lay = base_layout() | {
        "xaxis": {"title": {"text": "Trade return (P&L / entry value)"}, "tickformat": "~%",
                  **GRID},
        "yaxis": {"title": {"text": "Trades"}, **GRID},
        "shapes": [{"type": "line", "xref": "x", "yref": "paper", "x0": 0, "x1": 0, "y0": 0,
                    "y1": 1, "line": {"color": "#5b6475", "width": 1, "dash": "dot"}}],
    }  # fmt: skip
    return Chart(
        "trade-returns", "Distribution of trade returns", to_spec(data, lay),
        f"{trades.height:,} trades, open ones valued at the last close.",
    )  # fmt: skip


def symbol_contribution(result: Result) -> Chart:
    """Net P&L per symbol (after fees, open trades at the last close), strategy and benchmark."""
    symbols = result.symbols
    name = str(result.info.get("strategy", "strategy"))
    totals = {}
    for label, trades in ((name, result.trades), ("Buy and hold", result.benchmark_trades)):
        sums = dict(trades.group_by("symbol").agg(pl.col("pnl").sum()).iter_rows())
        totals[label] = np.array([float(sums.get(s, 0.0)) for s in symbols])
    order = np.argsort(-totals[name], kind="stable")
    data = [
        {"type": "bar", "name": label, "x": [symbols[i] for i in order], "y": values[order],
         "marker": {"color": STRATEGY if label == name else BENCHMARK},
         "hovertemplate": "%{x}: %{y:$,.2f}<extra>" + label + "</extra>"}
        for label, values in totals.items()
    ]  # fmt: skip
    lay = base_layout() | {
        "barmode": "group",
        "xaxis": {"type": "category", "automargin": True},
        "yaxis": {"title": {"text": "Net P&L (USD)"}, "tickformat": "$,.0f", **GRID},
    }
    return Chart(
        "contribution", "P&L contribution by symbol", to_spec(data, lay),
        "Sum of each symbol's trade P&L after fees; together they make the change in equity.",
    )  # fmt: skip
