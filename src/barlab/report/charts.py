"""The report's charts over time: equity, drawdown, exposure and rolling risk, as plotly JSON.

Minute runs have hundreds of thousands of bars; each trace is cut down here, before it reaches
the HTML, to a few thousand points that keep every bucket's extremes, so the report stays small
and the drawdown's deepest point is still drawn. Every number drawn comes from
:mod:`barlab.metrics` or straight from the Result's arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from barlab import metrics
from barlab.report.page import Chart

if TYPE_CHECKING:
    from barlab.result import Result

MAX_POINTS = 4000
"""Most points drawn per trace (per-bucket min and max, plus the first and last bar)."""

ROLLING_WINDOWS = (126, 63, 21, 10, 5)
"""Rolling windows tried, in trading days: the longest that fits the run three times."""

NY = "America/New_York"
MS_PER_DAY = 86_400_000
_NS_PER_MS = 1_000_000
STRATEGY, BENCHMARK, LOSS = "#1f5fbf", "#8a8a8a", "#b3261e"


@dataclass(frozen=True, slots=True)
class Timeline:
    """A run's bar times as plotly draws them, and its trading days."""

    x: np.ndarray  # New York wall-clock ms per bar (plotly date axes read numbers as ms)
    days: np.ndarray  # New York date of each bar, days since 1970-01-01
    breaks: list[dict[str, Any]]


def timeline(ts_ns: np.ndarray) -> Timeline:
    x = ny_wall_ms(ts_ns)
    return Timeline(x, (x // MS_PER_DAY).astype(np.int64), rangebreaks(x))


def minmax_indices(y: np.ndarray, max_points: int = MAX_POINTS) -> np.ndarray:
    """Sorted indices of at most ``max_points`` points of ``y`` that keep its shape.

    The first and last points are kept; the rest is cut into equal buckets and each bucket
    keeps its lowest and highest point (NaN counts as highest).

    >>> minmax_indices(np.array([0.0, 5, 1, 3, -2, 4, 0]), 4).tolist()
    [0, 1, 4, 6]
    """
    n = len(y)
    if max_points < 4:
        raise ValueError(f"max_points must be at least 4, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    # equal buckets as rows of a matrix (the last one padded), then argmin/argmax per row:
    # 10x faster than sorting on a year of minute bars
    n_buckets = (max_points - 2) // 2
    size = -(-(n - 2) // n_buckets)
    padded = np.full(n_buckets * size, np.nan)  # NaN marks the padding
    padded[: n - 2] = np.where(np.isnan(y[1:-1]), np.inf, y[1:-1])  # NaN counts as highest
    rows = padded.reshape(n_buckets, size)
    used = np.arange(n_buckets) * size < n - 2
    lows = np.argmin(np.where(np.isnan(rows), np.inf, rows), axis=1)
    highs = np.argmax(np.where(np.isnan(rows), -np.inf, rows), axis=1)
    base = np.arange(n_buckets) * size + 1
    keep = np.concatenate(([0], (base + lows)[used], (base + highs)[used], [n - 1]))
    return np.unique(keep)


def drawdown(equity: np.ndarray, initial_cash: float) -> np.ndarray:
    """``equity / running_peak - 1`` with the starting cash as the first peak (<= 0).

    The same definition as :func:`barlab.metrics.max_drawdown`, so the curve's lowest point
    is the reported maximum drawdown.
    """
    peak = np.fmax(np.fmax.accumulate(equity), float(initial_cash))
    with np.errstate(divide="ignore", invalid="ignore"):
        return equity / peak - 1.0


def ny_wall_ms(ts_ns: np.ndarray) -> np.ndarray:
    """New York wall-clock times as milliseconds, the way plotly date axes read numbers."""
    local = (
        pl.Series(ts_ns, dtype=pl.Int64)
        .cast(pl.Datetime("ns", "UTC"))
        .dt.convert_time_zone(NY)
        .dt.replace_time_zone(None)
        .cast(pl.Int64)
        .to_numpy()
    )
    return (local // _NS_PER_MS).astype(np.float64)


def rangebreaks(x_ms: np.ndarray) -> list[dict[str, Any]]:
    """Hide the weekends, missing weekdays (holidays) and nights the data has no bars in."""
    if len(x_ms) < 2:
        return []
    days = np.unique(x_ms // MS_PER_DAY).astype(np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    breaks: list[dict[str, Any]] = []
    if not np.any(weekday >= 5):
        breaks.append({"bounds": ["sat", "mon"]})
        every = np.arange(days[0], days[-1] + 1)
        every = every[(every + 3) % 7 < 5]
        missing = np.setdiff1d(every, days)
        if len(missing):
            breaks.append({"values": [iso_date(d) for d in missing], "dvalue": MS_PER_DAY})
    minute_of_day = (x_ms % MS_PER_DAY) / 60_000
    if np.all((minute_of_day >= 570) & (minute_of_day < 960)) and np.any(minute_of_day > 570):
        breaks.append({"bounds": [16, 9.5], "pattern": "hour"})  # regular hours only
    return breaks


def iso_date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def line(name: str, x: np.ndarray, y: np.ndarray, color: str, **extra: Any) -> dict[str, Any]:
    """A line trace of at most MAX_POINTS points that keeps each bucket's extremes."""
    keep = minmax_indices(y)
    return {
        "type": "scatter", "mode": "lines", "name": name, "x": x[keep], "y": y[keep],
        "line": {"color": color, "width": 1.4}, **extra,
    }  # fmt: skip


def layout(
    y_title: str, y_format: str, hover_format: str, breaks: list[dict], **extra: Any
) -> dict[str, Any]:
    """The house layout: a date x axis in New York time, gridlines, a legend on top."""
    return {
        **base_layout(),
        "hovermode": "x unified",
        "xaxis": {
            "type": "date", "title": {"text": "New York time"},
            "hoverformat": "%Y-%m-%d %H:%M", "rangebreaks": breaks, **GRID,
        },
        "yaxis": {
            "title": {"text": y_title}, "tickformat": y_format, "hoverformat": hover_format,
            **GRID,
        },
        **extra,
    }  # fmt: skip


MENU_TOP = 64
"""Top margin (px) of charts with buttons, so they sit under plotly's toolbar."""
GRID = {"showgrid": True, "gridcolor": "#e6e6e6", "automargin": True}


def base_layout() -> dict[str, Any]:
    return {
        "template": "none",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
        "height": 340,
        "margin": {"l": 70, "r": 20, "t": 30, "b": 40},
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
    }


def to_spec(data: list[dict[str, Any]], lay: dict[str, Any]) -> str:
    """Figure JSON; go.Figure resolves the template and packs float arrays as base64."""
    import plotly.graph_objects as go
    import plotly.io as pio

    return pio.to_json(go.Figure(data=data, layout=lay), engine="json")


def log_toggle(axis: str = "yaxis") -> list[dict[str, Any]]:
    """updatemenus: two buttons switching ``axis`` between a linear and a log scale."""
    return [
        {
            "type": "buttons", "direction": "right", "showactive": True, "active": 0,
            "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom",
            "pad": {"r": 0, "t": 0, "b": 2}, "font": {"size": 11},
            "buttons": [
                {"label": "Linear", "method": "relayout", "args": [{f"{axis}.type": "linear"}]},
                {"label": "Log", "method": "relayout", "args": [{f"{axis}.type": "log"}]},
            ],
        }
    ]  # fmt: skip


# --- the charts -------------------------------------------------------------------------------


def equity_chart(result: Result, tl: Timeline) -> Chart:
    name = str(result.info.get("strategy", "strategy"))
    data = [
        line(name, tl.x, np.asarray(result.equity, dtype=np.float64), STRATEGY),
        line("Buy and hold", tl.x, np.asarray(result.benchmark_equity, np.float64), BENCHMARK),
    ]
    lay = layout("Equity (USD)", "$,.0f", "$,.2f", tl.breaks, updatemenus=log_toggle())
    lay["margin"]["t"] = MENU_TOP
    return Chart("equity", "Equity against buy-and-hold", to_spec(data, lay))


def drawdown_chart(result: Result, tl: Timeline, *, top: int = 5) -> Chart:
    """The underwater curves, with the strategy's ``top`` deepest drawdowns shaded and ranked."""
    cash = float(result.info["options"]["cash"])
    name = str(result.info.get("strategy", "strategy"))
    equity = np.asarray(result.equity, dtype=np.float64)
    under = drawdown(equity, cash)
    data = [
        line(name, tl.x, under, STRATEGY, fill="tozeroy", fillcolor="rgba(31,95,191,0.15)"),
        line("Buy and hold", tl.x, drawdown(np.asarray(result.benchmark_equity), cash), BENCHMARK),
    ]
    worst = metrics.drawdown_periods(
        metrics.returns_from_equity(equity, initial_cash=cash), top=top
    )
    shapes = []
    for p in worst:
        x0 = tl.x[max(p.start - 1, 0)]
        x1 = tl.x[p.end if p.end >= 0 else -1]
        shapes.append(
            {"type": "rect", "xref": "x", "yref": "paper", "x0": x0, "x1": x1, "y0": 0, "y1": 1,
             "fillcolor": "rgba(179,38,30,0.07)", "line": {"width": 0}, "layer": "below"}
        )  # fmt: skip
    if worst:
        troughs = np.array([p.trough for p in worst])
        data.append(
            {"type": "scatter", "mode": "markers+text", "name": f"Worst {len(worst)}",
             "x": tl.x[troughs], "y": np.array([p.depth for p in worst]),
             "text": [f"#{i + 1}" for i in range(len(worst))], "textposition": "bottom center",
             "marker": {"color": LOSS, "size": 8, "symbol": "triangle-up"},
             "customdata": np.array([p.length for p in worst], dtype=np.float64),
             "hovertemplate": "%{text}: %{y:.2%} over %{customdata:,} bars<extra></extra>"}
        )  # fmt: skip
    lay = layout("Below the running peak", "~%", ".2%", tl.breaks, shapes=shapes)
    which = "deepest drawdown" if len(worst) == 1 else f"{len(worst)} deepest drawdowns"
    note = (
        f"Shaded: the strategy's {which}, from the peak to the bar that regained it (or the "
        "last bar), numbered at the trough."
        if worst
        else "The strategy never fell below its starting cash or a later peak."
    )
    return Chart("drawdown", "Drawdown (underwater)", to_spec(data, lay), note)


def exposure_chart(result: Result, tl: Timeline) -> Chart:
    """Net market value of the positions as a share of equity, and how many symbols are held."""
    equity = np.asarray(result.equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        net = (equity - np.asarray(result.cash)) / equity
    held = np.count_nonzero(np.asarray(result.positions) != 0.0, axis=1).astype(np.float64)
    keep = np.union1d(minmax_indices(net, MAX_POINTS // 2), minmax_indices(held, MAX_POINTS // 2))
    data = [
        {"type": "scatter", "mode": "lines", "name": "Net exposure (% of equity)",
         "x": tl.x[keep], "y": net[keep], "line": {"color": STRATEGY, "width": 1.2},
         "fill": "tozeroy", "fillcolor": "rgba(31,95,191,0.12)"},
        {"type": "scatter", "mode": "lines", "name": "Symbols held", "x": tl.x[keep],
         "y": held[keep], "yaxis": "y2", "opacity": 0.6,
         "line": {"color": BENCHMARK, "width": 1, "shape": "hv"}},
    ]  # fmt: skip
    lay = layout("Net exposure", "~%", ".1%", tl.breaks)
    most = max(float(held.max(initial=0.0)), 1.0)
    lay["yaxis2"] = {
        "title": {"text": "Symbols held"}, "overlaying": "y", "side": "right",
        "range": [0, most * 1.05], "dtick": max(1, int(most) // 5), "tickformat": ",d",
        "showgrid": False, "automargin": True,
    }  # fmt: skip
    return Chart(
        "exposure", "Exposure over time", to_spec(data, lay),
        "Net exposure: (equity − cash) / equity at each bar's close; shorts count negative.",
    )  # fmt: skip


def rolling_window(n_days: int, bars_per_day: float) -> int | None:
    """The longest of ROLLING_WINDOWS that fits the run three times and holds 20+ returns."""
    for w in ROLLING_WINDOWS:
        if n_days >= 3 * w and w * bars_per_day >= 20:
            return w
    return None


def rolling_chart(result: Result, tl: Timeline) -> Chart | None:
    """Rolling Sharpe (top) and annualised volatility (bottom) over a window of trading days."""
    ppy = float(result.info["periods_per_year"])
    cash = float(result.info["options"]["cash"])
    n_days = len(np.unique(tl.days))
    window = rolling_window(n_days, len(tl.days) / max(n_days, 1))
    if window is None:
        return None
    ends = np.flatnonzero(np.append(tl.days[1:] != tl.days[:-1], True))
    x = tl.x[ends]
    data = []
    for name, equity, color in (
        (str(result.info.get("strategy", "strategy")), result.equity, STRATEGY),
        ("Buy and hold", result.benchmark_equity, BENCHMARK),
    ):
        r = metrics.returns_from_equity(np.asarray(equity, np.float64), initial_cash=cash)
        kw = {"window": window, "periods_per_year": ppy}
        for stat, axis, show in ((metrics.rolling_sharpe, "y", True),
                                 (metrics.rolling_volatility, "y2", False)):  # fmt: skip
            data.append(
                {"type": "scatter", "mode": "lines", "name": name, "x": x,
                 "y": stat(r, tl.days, **kw), "yaxis": axis, "legendgroup": name,
                 "showlegend": show, "line": {"color": color, "width": 1.4}}
            )  # fmt: skip
    lay = layout("Sharpe", ".2f", ".2f", tl.breaks, height=440)
    lay["xaxis"]["anchor"] = "y2"  # the time axis under the lower panel
    lay["yaxis"] |= {"domain": [0.55, 1.0]}
    lay["yaxis2"] = {
        "title": {"text": "Volatility (ann.)"}, "tickformat": "~%", "hoverformat": ".2%",
        "domain": [0.0, 0.45], "anchor": "x", **GRID,
    }  # fmt: skip
    return Chart(
        "rolling", f"Rolling Sharpe and volatility ({window} trading days)", to_spec(data, lay),
        f"At each day's close, over the bar returns of the last {window} trading days, "
        "annualised like the headline figures.",
    )  # fmt: skip
