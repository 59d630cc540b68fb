"""Fixtures of the live tests: small Bars on real NYSE sessions, exchanges and emulators."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from barlab.bars import Bars
from barlab.data.calendar import NEW_YORK

KEY_ID = "PKTESTKEY0123456789"
SECRET = "s3cr3t-paper-secret-ABCDEFGHIJ"
DEMO = ("AAPL", "MSFT", "TSLA")


def demo_bars(data_dir: Path, first: str, last: str, symbols: tuple[str, ...] = DEMO) -> Bars:
    """1-minute bars of the demo market (regular hours) from ``first`` to ``last``
    (YYYY-MM-DD, inclusive), cached in ``data_dir``."""
    from barlab.data.panel import load_bars

    return load_bars(
        list(symbols), dt.date.fromisoformat(first), dt.date.fromisoformat(last),
        timeframe="1m", source="demo", data_dir=data_dir,
    )  # fmt: skip


def session_bars(
    days: tuple[str, ...] = ("2024-03-05", "2024-03-06"),
    *,
    minutes: int = 390,
    symbols: tuple[str, ...] = ("AAPL", "MSFT"),
    start_price: float = 100.0,
) -> Bars:
    """1-minute bars from 09:30 New York on each day: a gentle staircase, every bar 1 cent
    above the last (open = previous close), high/low 5 cents around, volume 1000."""
    ts = []
    for day in days:
        opens = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(9, 30), tzinfo=NEW_YORK)
        first = int(opens.timestamp()) * 10**9
        ts += [first + k * 60 * 10**9 for k in range(minutes)]
    n, m = len(ts), len(symbols)
    step = np.arange(n, dtype=float)[:, None] * 0.01
    base = start_price + np.arange(m, dtype=float)[None, :] * 100.0
    open_ = np.round(base + step, 2)
    close = np.round(open_ + 0.01, 2)
    return Bars(
        ts_ns=np.array(ts, dtype=np.int64),
        open=np.ascontiguousarray(open_),
        high=np.ascontiguousarray(np.maximum(open_, close) + 0.05),
        low=np.ascontiguousarray(np.minimum(open_, close) - 0.05),
        close=np.ascontiguousarray(close),
        volume=np.full((n, m), 1000.0),
        symbols=symbols,
        timeframe="1m",
        source="demo",
        periods_per_year=390 * 252,
    )


def with_bar(bars: Bars, row: int, col: int, **prices: float) -> Bars:
    """``bars`` with one bar's open/high/low/close/volume replaced."""
    arrays = {k: getattr(bars, k).copy() for k in ("open", "high", "low", "close", "volume")}
    for name, value in prices.items():
        arrays[name][row, col] = value
    return Bars(
        ts_ns=bars.ts_ns, symbols=bars.symbols, timeframe=bars.timeframe, source=bars.source,
        periods_per_year=bars.periods_per_year, **arrays,
    )  # fmt: skip


@pytest.fixture
def bars() -> Bars:
    return session_bars()


@pytest.fixture
def server(bars: Bars) -> Iterator[object]:
    """An emulator on 127.0.0.1 over two sessions, keys KEY_ID/SECRET, rate limit off."""
    from barlab.live.emulator import EmulatorServer
    from barlab.live.exchange import PaperExchange

    exchange = PaperExchange(bars, cash=100_000.0)
    with EmulatorServer(exchange, key_id=KEY_ID, secret_key=SECRET, rate_limit_per_min=None) as srv:
        yield srv
