"""The report's charts: equity against buy-and-hold and the underwater curve, as plotly JSON.

Minute runs have hundreds of thousands of bars; each trace is cut down here, before it reaches
the HTML, to a few thousand points that keep every bucket's extremes, so the report stays small
and the drawdown's deepest point is still drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from barlab.result import Result

MAX_POINTS = 4000
"""Most points drawn per trace (per-bucket min and max, plus the first and last bar)."""

NY = "America/New_York"
_NS_PER_MS = 1_000_000
_MS_PER_DAY = 86_400_000
_STRATEGY, _BENCHMARK = "#1f5fbf", "#8a8a8a"


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
    n_buckets = (max_points - 2) // 2
    inner = np.arange(1, n - 1)
    bucket = (inner - 1) * n_buckets // (n - 2)
    order = inner[np.lexsort((y[1:-1], bucket))]  # by bucket, then by value
    starts = np.searchsorted(bucket, np.arange(n_buckets), side="left")
    ends = np.searchsorted(bucket, np.arange(n_buckets), side="right") - 1
    return np.unique(np.concatenate(([0], order[starts], order[ends], [n - 1])))


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
    days = np.unique(x_ms // _MS_PER_DAY).astype(np.int64)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
    breaks: list[dict[str, Any]] = []
    if not np.any(weekday >= 5):
        breaks.append({"bounds": ["sat", "mon"]})
        every = np.arange(days[0], days[-1] + 1)
        every = every[(every + 3) % 7 < 5]
        missing = np.setdiff1d(every, days)
        if len(missing):
            breaks.append({"values": [_iso_date(d) for d in missing], "dvalue": _MS_PER_DAY})
    minute_of_day = (x_ms % _MS_PER_DAY) / 60_000
    if np.all((minute_of_day >= 570) & (minute_of_day < 960)) and np.any(minute_of_day > 570):
        breaks.append({"bounds": [16, 9.5], "pattern": "hour"})  # regular hours only
    return breaks


def _iso_date(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def _trace(name: str, x: np.ndarray, y: np.ndarray, color: str, max_points: int) -> dict:
    keep = minmax_indices(y, max_points)
    line = {"color": color, "width": 1.4}
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": x[keep],
        "y": y[keep],
        "line": line,
    }


def _layout(y_title: str, y_format: str, hover_format: str, breaks: list[dict]) -> dict:
    grid = {"showgrid": True, "gridcolor": "#e6e6e6", "automargin": True}
    return {
        "template": "none",
        "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"},
        "height": 340,
        "margin": {"l": 70, "r": 20, "t": 30, "b": 40},
        "hovermode": "x unified",
        "legend": {"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"},
        "xaxis": {
            "type": "date",
            "title": {"text": "New York time"},
            "hoverformat": "%Y-%m-%d %H:%M",
            "rangebreaks": breaks,
            **grid,
        },
        "yaxis": {
            "title": {"text": y_title},
            "tickformat": y_format,
            "hoverformat": hover_format,
            **grid,
        },
    }


def figures(result: Result, *, max_points: int = MAX_POINTS) -> list[tuple[str, str]]:
    """The report's charts as ``(title, plotly JSON)``: equity, then drawdown."""
    import plotly.graph_objects as go
    import plotly.io as pio

    x = ny_wall_ms(result.ts_ns)
    breaks = rangebreaks(x)
    strategy = np.asarray(result.equity, dtype=np.float64)
    bench = np.asarray(result.benchmark_equity, dtype=np.float64)
    cash = float(result.info["options"]["cash"])
    name = str(result.info.get("strategy", "strategy"))
    equity = go.Figure(
        data=[
            _trace(name, x, strategy, _STRATEGY, max_points),
            _trace("Buy and hold", x, bench, _BENCHMARK, max_points),
        ],
        layout=_layout("Equity (USD)", "$,.0f", "$,.2f", breaks),
    )
    under = go.Figure(
        data=[
            _trace(name, x, drawdown(strategy, cash), _STRATEGY, max_points)
            | {"fill": "tozeroy", "fillcolor": "rgba(31,95,191,0.15)"},
            _trace("Buy and hold", x, drawdown(bench, cash), _BENCHMARK, max_points),
        ],
        layout=_layout("Below the running peak", ".0%", ".2%", breaks),
    )
    # go.Figure resolves the template and packs the float arrays as base64 (a third of the size)
    return [
        ("Equity against buy-and-hold", pio.to_json(equity, engine="json")),
        ("Drawdown (underwater)", pio.to_json(under, engine="json")),
    ]
