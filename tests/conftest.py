"""Shared fixtures: small Bars made in memory."""

from __future__ import annotations

import numpy as np
import pytest

from barlab.bars import Bars

NS_PER_MIN = 60 * 10**9
# 2023-01-03 14:30 UTC = 09:30 New York
SESSION_OPEN_NS = 1_672_756_200 * 10**9


def make_bars(
    n: int = 500,
    m: int = 2,
    *,
    seed: int = 0,
    source: str = "demo",
    symbols: tuple[str, ...] | None = None,
    bars_per_day: int = 390,
) -> Bars:
    """A random walk of ``n`` 1-minute bars for ``m`` symbols on consecutive 390-bar days."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, (n, m)), axis=0))
    open_ = np.vstack([close[:1], close[:-1]]) * np.exp(rng.normal(0, 0.0005, (n, m)))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.001, (n, m)))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.001, (n, m)))
    day, minute = np.divmod(np.arange(n), bars_per_day)
    ts = SESSION_OPEN_NS + day * 86_400 * 10**9 + minute * NS_PER_MIN
    return Bars(
        ts_ns=ts.astype(np.int64),
        open=np.ascontiguousarray(open_),
        high=np.ascontiguousarray(high),
        low=np.ascontiguousarray(low),
        close=np.ascontiguousarray(close),
        volume=np.full((n, m), 1000.0),
        symbols=symbols or tuple(f"S{i}" for i in range(m)),
        timeframe="1m",
        source=source,
        periods_per_year=390 * 252,
    )


@pytest.fixture
def bars() -> Bars:
    return make_bars()
