"""Compile every kernel ahead of time (``backtest warmup``), so the first real run is fast.

Runs each strategy barlab can find through a tiny backtest on made-up bars, once with one
symbol and once with many (the two layouts some kernels choose between), which compiles (or
loads from the cache) every kernel with the argument types real runs use.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from barlab import metrics
from barlab.bars import Bars
from barlab.engine.backtest import backtest
from barlab.metrics import compute_metrics
from barlab.strategy import available, load_strategy


def _bars(n_symbols: int, n_bars: int = 2_000) -> Bars:
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, (n_bars, n_symbols)), axis=0))
    ts = 1_672_756_200 * 10**9 + np.arange(n_bars, dtype=np.int64) * 60 * 10**9
    return Bars(
        ts_ns=ts, open=close.copy(), high=close * 1.001, low=close * 0.999, close=close,
        volume=np.full(close.shape, 1e4), symbols=tuple(f"W{i}" for i in range(n_symbols)),
        timeframe="1m", source="demo", periods_per_year=98_280.0,
    )  # fmt: skip


def warmup(extra_dirs: list | None = None) -> list[tuple[str, float]]:
    """Compile (or load from the cache) every kernel; returns (strategy, seconds) per strategy."""
    timings = []
    samples = [_bars(1), _bars(12)]
    for name in available(extra_dirs):
        started = time.perf_counter()
        strategy = load_strategy(name, extra_dirs)()
        for bars in samples:
            backtest(strategy, bars).metrics  # noqa: B018 (the metrics are computed lazily)
        timings.append((name, time.perf_counter() - started))
    return timings


def kernels_cached() -> bool:
    """Does numba's cache hold the simulation kernel already (so the next run loads it instead
    of compiling everything, which takes tens of seconds)? Looks where numba caches: the
    ``NUMBA_CACHE_DIR``, or beside the sources, or the user-wide fallback."""
    folder = os.environ.get("NUMBA_CACHE_DIR")
    if folder:
        roots = [Path(folder)]
    else:
        roots = [Path(__file__).parent / "__pycache__", Path.home() / ".cache" / "numba"]
    return any(next(root.glob("**/kernel.simulate_nb-*.nbi"), None) for root in roots)


def compile_statistics() -> None:
    """Compile (or load) the statistics kernels alone: a run's metrics and the ones its
    report's charts compute (drawdown periods, rolling Sharpe and volatility). What
    :func:`statistics_compiled_aside`'s second process runs."""
    equity = np.linspace(100_000.0, 101_000.0, 50)
    compute_metrics(
        equity, periods_per_year=98_280.0, initial_cash=100_000.0, trade_pnl=np.array([1.0]),
        position_mask=np.ones(equity.size, dtype=np.bool_), fees=0.0,
    )  # fmt: skip
    returns = metrics.returns_from_equity(equity, initial_cash=100_000.0)
    metrics.drawdown_periods(returns, top=5)
    days = np.repeat(np.arange(5), 10)
    for rolling in (metrics.rolling_sharpe, metrics.rolling_volatility):
        rolling(returns, days, window=2, periods_per_year=98_280.0)


@contextlib.contextmanager
def statistics_compiled_aside() -> Iterator[None]:
    """On a cold kernel cache, compile the statistics kernel in a second process while this
    one compiles the simulation (about 6 s and 9 s of a first run's compilation, one core
    each), and wait for it on leaving, so the statistics computed after load from the cache.
    If that process fails, this one compiles them itself when it needs them."""
    if kernels_cached():
        yield
        return
    aside = subprocess.Popen(
        [sys.executable, "-c", "from barlab.engine.warmup import compile_statistics as c; c()"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        aside.wait()
