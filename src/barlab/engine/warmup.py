"""Compile every kernel ahead of time (``backtest warmup``), so the first real run is fast.

Runs each strategy barlab can find through a tiny backtest on made-up bars, once with one
symbol and once with many (the two layouts some kernels choose between), which compiles (or
loads from the cache) every kernel with the argument types real runs use.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from barlab.bars import Bars
from barlab.engine.backtest import backtest
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
