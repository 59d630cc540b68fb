"""Deterministic bars, strategies and readers of the report's HTML, shared by the report tests."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import numpy as np
import polars as pl

import barlab
from barlab.bars import Bars

MINUTES_PER_DAY = 390


class Momentum(barlab.Strategy):
    """Long a symbol while its close is above the close ``lookback`` bars earlier."""

    lookback: int = 30

    def signals(self, bars: Bars) -> barlab.Signals:
        close, k = bars.close, self.lookback
        target = np.full(close.shape, np.nan)
        target[k:] = (close[k:] > close[:-k]).astype(np.float64)
        return barlab.Signals(target=target)


class Hold(barlab.Strategy):
    """Buys every symbol on the first bar and holds: its equity is the market's."""

    def signals(self, bars: Bars) -> barlab.Signals:
        target = np.full(bars.close.shape, np.nan)
        target[0] = 1.0
        return barlab.Signals(target=target)


class Idle(barlab.Strategy):
    """Never trades."""

    def signals(self, bars: Bars) -> barlab.Signals:
        return barlab.Signals(target=np.full(bars.close.shape, np.nan))


def session_minutes(n: int) -> np.ndarray:
    """Bar starts of ``n`` regular-hours minutes on consecutive weekdays from 2024-01-02 (NY)."""
    n_days = -(-n // MINUTES_PER_DAY)
    days = np.busday_offset("2024-01-02", np.arange(n_days), roll="forward")
    open_ns = days.astype("datetime64[ns]").astype(np.int64) + (9 * 60 + 30) * 60 * 10**9
    local = (open_ns[:, None] + np.arange(MINUTES_PER_DAY) * 60 * 10**9).ravel()[:n]
    return (
        pl.Series(local, dtype=pl.Int64)
        .cast(pl.Datetime("ns"))
        .dt.replace_time_zone("America/New_York")
        .dt.convert_time_zone("UTC")
        .cast(pl.Int64)
        .to_numpy()
    )


def make_bars(n: int, symbols: tuple[str, ...], *, source: str = "demo", seed: int = 1) -> Bars:
    rng = np.random.default_rng(seed)
    shape = (n, len(symbols))
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, shape), axis=0))
    open_ = np.vstack([close[:1], close[:-1]])
    return Bars(
        ts_ns=session_minutes(n),
        open=np.ascontiguousarray(open_),
        high=np.maximum(open_, close) * 1.0005,
        low=np.minimum(open_, close) * 0.9995,
        close=close,
        volume=np.full(shape, 1_000.0),
        symbols=symbols,
        timeframe="1m",
        source=source,
        periods_per_year=98_280.0,
        version="test-v1",
    )


def figures(page: str) -> dict[str, dict[str, Any]]:
    """Every chart's plotly figure, by key (``equity``, ``drawdown``, ...)."""
    found = re.findall(r'<script type="application/json" id="figure-([\w-]+)">(.*?)</script>', page)
    return {key: json.loads(spec) for key, spec in found}


def values(data: Any) -> np.ndarray:
    """A trace's array, from plotly's packed ``{"dtype", "bdata", "shape"}`` or a plain list."""
    if isinstance(data, dict) and "bdata" in data:
        arr = np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
        if "shape" in data:
            arr = arr.reshape([int(s) for s in str(data["shape"]).split(",")])
        return arr
    return np.asarray(data)


def section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]
