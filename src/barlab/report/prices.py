"""The price chart: one symbol's bars with the strategy's entries and exits, a dropdown for the
others, and where those bars come from.

A Result keeps no prices, so the bars are passed in or read back from the local Parquet cache
(never fetched). Bars read back are used only if they are the run's bars: the same bar times,
and every fill in the order log at that bar's open plus the configured slippage.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from barlab.bars import Bars
from barlab.errors import BarlabError
from barlab.report.charts import (
    LOSS,
    MAX_POINTS,
    MENU_TOP,
    Timeline,
    iso_date,
    layout,
    minmax_indices,
    to_spec,
)
from barlab.report.page import Chart

if TYPE_CHECKING:
    from barlab.result import Result

log = logging.getLogger(__name__)

MAX_CANDLES = 2_000
"""Up to this many bars a symbol is drawn as candles; beyond, as a min/max-per-bucket line."""
MAX_MARKERS = 1_000
"""Most trades marked per symbol; a busier symbol shows evenly spaced ones and says so."""
MAX_SYMBOLS = 20
"""Most symbols in the dropdown (those with the most trades)."""
_GAIN = "#1b6e3a"


def cached_bars(result: Result) -> tuple[Bars | None, str]:
    """The run's bars from the local cache, or ``(None, why not)``; nothing is downloaded."""
    from barlab.data.store import Store

    info = result.info
    if len(result.ts_ns) == 0:
        return None, "the run has no bars"
    try:
        root = (result.config.get("data") or {}).get("dir")
        if root is None:
            from barlab.config import load_config

            root = load_config().data_dir
        store = Store(Path(root).expanduser())
        days = (result.ts_ns[[0, -1]] // 86_400_000_000_000).tolist()
        first = dt.date.fromisoformat(iso_date(days[0])) - dt.timedelta(days=1)
        last = dt.date.fromisoformat(iso_date(days[1])) + dt.timedelta(days=1)
        shape = (len(result.ts_ns), len(result.symbols))
        arrays = {f: np.full(shape, np.nan) for f in ("open", "high", "low", "close")}
        for j, symbol in enumerate(result.symbols):
            df = store.read(
                source=info["source"], timeframe=info["timeframe"], symbol=symbol,
                start=first, end=last, columns=["ts", "open", "high", "low", "close"],
            )  # fmt: skip
            ts = df["ts"].dt.epoch("ns").to_numpy()
            at = np.searchsorted(result.ts_ns, ts).clip(0, shape[0] - 1)
            hit = result.ts_ns[at] == ts
            for f, arr in arrays.items():
                arr[at[hit], j] = df[f].to_numpy()[hit]
    except (BarlabError, OSError, KeyError, ValueError) as e:
        log.debug("no cached bars for the price chart: %s", e)
        return None, f"the run's bars could not be read from the local cache ({e})"
    if not np.isfinite(arrays["close"]).any():
        return None, f"the local cache ({store.root}) holds none of the run's bars"
    bars = Bars(
        ts_ns=result.ts_ns, volume=np.zeros(shape), symbols=tuple(result.symbols),
        timeframe=info["timeframe"], source=info["source"],
        periods_per_year=float(info["periods_per_year"]), **arrays,
    )  # fmt: skip
    if not fills_match(result, bars):
        return None, "the cached bars are not the ones this run was tested on"
    return bars, ""


def fills_match(result: Result, bars: Bars) -> bool:
    """Every filled market order's price is its bar's open with the run's slippage (exits at a
    stop or target level fill elsewhere in the bar), and there are bars at all."""
    if not np.isfinite(bars.close).any():
        return False
    orders = result.orders.filter(result.orders["status"] != "refused")
    if "kind" in orders.columns:
        orders = orders.filter(orders["kind"] == "market")
    if orders.height == 0:
        return True
    bps = float(result.info["options"]["costs"]["slippage_bps"])
    col = {s: j for j, s in enumerate(bars.symbols)}
    j = np.array([col[s] for s in orders["symbol"].to_list()], dtype=np.int64)
    side = np.where(orders["side"].to_numpy() == "buy", 1.0, -1.0)
    expected = bars.open[orders["fill_bar"].to_numpy(), j] * (1.0 + side * bps * 1e-4)
    return bool(np.allclose(orders["price"].to_numpy(), expected, rtol=1e-9, atol=0.0))


def _price_traces(bars: Bars, j: int, tl: Timeline) -> list[dict[str, Any]]:
    symbol = bars.symbols[j]
    idx = np.flatnonzero(np.isfinite(bars.close[:, j]))
    if len(idx) <= MAX_CANDLES:
        return [
            {"type": "candlestick", "name": symbol, "x": tl.x[idx],
             "open": bars.open[idx, j], "high": bars.high[idx, j], "low": bars.low[idx, j],
             "close": bars.close[idx, j], "increasing": {"line": {"color": _GAIN}},
             "decreasing": {"line": {"color": LOSS}}}
        ]  # fmt: skip
    keep = idx[minmax_indices(bars.close[idx, j], MAX_POINTS)]
    return [
        {"type": "scatter", "mode": "lines", "name": f"{symbol} close", "x": tl.x[keep],
         "y": bars.close[keep, j], "line": {"color": "#3d4656", "width": 1}}
    ]  # fmt: skip


def _marker_traces(result: Result, symbol: str, tl: Timeline) -> tuple[list[dict], int, int]:
    trades = result.trades.filter(result.trades["symbol"] == symbol)
    total = trades.height
    if total > MAX_MARKERS:
        trades = trades[np.unique(np.linspace(0, total - 1, MAX_MARKERS).round().astype(int))]
    traces = []
    for direction, shape, color in (("long", "triangle-up", _GAIN), ("short", "triangle-down",
                                                                      "#c77700")):  # fmt: skip
        t = trades.filter(trades["direction"] == direction)
        if t.height:
            traces.append(
                {"type": "scatter", "mode": "markers", "name": f"{direction.title()} entries",
                 "x": tl.x[t["entry_bar"].to_numpy()], "y": t["entry_price"].to_numpy(),
                 "customdata": t["size"].to_numpy().astype(np.float64),
                 "marker": {"symbol": shape, "size": 9, "color": color,
                            "line": {"width": 0.5, "color": "#fff"}},
                 "hovertemplate": f"{direction} entry: %{{customdata:,}} sh @ %{{y:$,.2f}}"
                                  "<extra></extra>"}
            )  # fmt: skip
    closed = trades.filter(~trades["is_open"])
    if closed.height:
        traces.append(
            {"type": "scatter", "mode": "markers", "name": "Exits",
             "x": tl.x[closed["exit_bar"].to_numpy()], "y": closed["exit_price"].to_numpy(),
             "customdata": closed["pnl"].to_numpy(),
             "marker": {"symbol": "x-thin", "size": 9, "line": {"width": 2, "color": "#1d2330"}},
             "hovertemplate": "exit @ %{y:$,.2f}, P&L %{customdata:$,.2f}<extra></extra>"}
        )  # fmt: skip
    return traces, trades.height, total


def price_chart(result: Result, tl: Timeline, bars: Bars | None) -> tuple[Chart | None, str]:
    """The chart, or ``(None, why not)``."""
    why = ""
    if bars is None:
        bars, why = cached_bars(result)
    if bars is None:
        return None, why
    if tuple(bars.symbols) != tuple(result.symbols) or not np.array_equal(bars.ts_ns, result.ts_ns):
        return None, "the bars given are not the ones this run was tested on"
    counts = result.trades["symbol"].value_counts()
    by_trades = dict(counts.iter_rows())
    order = sorted(range(len(bars.symbols)), key=lambda j: -by_trades.get(bars.symbols[j], 0))
    shown = sorted(order[:MAX_SYMBOLS])
    data: list[dict[str, Any]] = []
    groups: list[tuple[str, int, int]] = []  # symbol, first trace, number of traces
    thinned = []
    for j in shown:
        symbol = bars.symbols[j]
        traces = _price_traces(bars, j, tl)
        marks, n_marked, n_total = _marker_traces(result, symbol, tl)
        if n_marked < n_total:
            thinned.append(f"{symbol}: {n_marked:,} of {n_total:,}")
        groups.append((symbol, len(data), len(traces) + len(marks)))
        data += traces + marks
    first = max(groups, key=lambda g: by_trades.get(g[0], 0))[0]
    buttons = []
    for symbol, start, count in groups:
        visible = [start <= i < start + count for i in range(len(data))]
        if symbol == first:
            for i, trace in enumerate(data):
                trace["visible"] = visible[i]
        buttons.append(
            {"label": symbol, "method": "update",
             "args": [{"visible": visible}, {"yaxis.title.text": f"{symbol} (USD)"}]}
        )  # fmt: skip
    lay = layout(f"{first} (USD)", "$,.2f", "$,.2f", tl.breaks, height=420)
    lay["xaxis"]["rangeslider"] = {"visible": False}
    lay["margin"]["t"] = MENU_TOP
    lay["hovermode"] = "closest"
    if len(groups) > 1:
        lay["updatemenus"] = [
            {"type": "dropdown", "buttons": buttons, "active": [g[0] for g in groups].index(first),
             "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom", "showactive": True}
        ]  # fmt: skip
    notes = [
        "Candles when a symbol has at most "
        f"{MAX_CANDLES:,} bars; otherwise the close, keeping each stretch's lowest and highest."
        " Markers at fill prices (slippage included); choose the symbol on the right."
    ]
    if thinned:
        notes.append(f"Busy symbols show evenly spaced trades ({'; '.join(thinned)}).")
    if len(shown) < len(bars.symbols):
        notes.append(f"The {len(shown)} symbols with the most trades are listed.")
    return Chart("price", "Price, entries and exits", to_spec(data, lay), " ".join(notes)), ""
