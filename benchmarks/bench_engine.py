"""Engine workloads from ../shared/BENCHMARKS.md: W1 (one symbol-year) and W3 (100 symbols).

    python benchmarks/bench_engine.py            # prints figures; no pass/fail

Synthetic GBM minute bars (98,280 per symbol-year, ~0.1 % per-minute volatility), SMA crossover
10/50 long only, all-in with whole shares, 100,000 cash, 0.1 % fee per fill, no slippage.
Timings are the best of several runs after a warm-up that absorbs numba compilation; the
compilation (or cache load) time is reported separately.
"""

from __future__ import annotations

import resource
import time

import numpy as np

import barlab
from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions, simulate

BARS_PER_YEAR = 390 * 252
TARGETS_MS = {
    "W1 backtest()": 5.0,
    "W1 backtest() + stop-loss + all risk rules": 5.0,
    "W3 backtest()": 300.0,
}
# issue 4's workload: a stop-loss and every risk rule switched on
RISKY = {
    "stop_loss": 0.01,
    "max_position_size": 90_000.0,
    "max_portfolio_value": 100_000.0,
    "max_open_positions": 50,
    "daily_loss_limit": 5_000.0,
    "max_drawdown": 0.9,
}


def gbm_bars(n_symbols: int, n_bars: int = BARS_PER_YEAR, seed: int = 42) -> Bars:
    rng = np.random.default_rng(seed)
    log_ret = rng.normal(0.0, 0.001, (n_bars, n_symbols))
    day = np.arange(n_bars) // 390
    gaps = np.zeros((n_bars, n_symbols))
    first = np.r_[True, day[1:] != day[:-1]]
    gaps[first] = rng.normal(0.0, 0.005, (int(first.sum()), n_symbols))
    close = 100.0 * np.exp(np.cumsum(log_ret + gaps, axis=0))
    open_ = close * np.exp(-log_ret * rng.uniform(0.2, 0.8, close.shape))
    high = np.maximum(open_, close) * 1.0003
    low = np.minimum(open_, close) * 0.9997
    ts = (1_672_756_200 + day * 86_400 + (np.arange(n_bars) % 390) * 60) * 10**9
    return Bars(
        ts_ns=ts.astype(np.int64), open=open_, high=high, low=low, close=close,
        volume=np.full(close.shape, 1e4), symbols=tuple(f"S{i:03d}" for i in range(n_symbols)),
        timeframe="1m", source="demo", periods_per_year=BARS_PER_YEAR,
    )  # fmt: skip


def best_ms(fn, repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def main() -> None:
    strategy = barlab.load_strategy("sma_crossover")(fast=10, slow=50)
    options = {"commission_rate": 0.001, "slippage_bps": 0.0}
    opts = BacktestOptions.from_kwargs(**options)
    rows = []
    for label, m in (("W1", 1), ("W3", 100)):
        bars = gbm_bars(m)
        t = time.perf_counter()
        result = barlab.backtest(strategy, bars, **options)
        first_ms = (time.perf_counter() - t) * 1e3
        target = strategy.signals(bars).target
        rows.append((f"{label} first call (compile or cache load)", first_ms))
        timings = {
            "signals()": lambda b=bars: strategy.signals(b),
            "kernel only": lambda b=bars, t=target: simulate(b, t, opts),
            "backtest()": lambda b=bars: barlab.backtest(strategy, b, **options),
        }
        if m == 1:
            risky = {**options, **RISKY}
            timings["backtest() + stop-loss + all risk rules"] = lambda b=bars, r=risky: (
                barlab.backtest(strategy, b, **r)
            )
        rows += [(f"{label} {name}", best_ms(fn)) for name, fn in timings.items()]
        print(f"{label}: {m} symbol(s) x {bars.n_bars:,} bars: {result.metrics.n_trades} trades, "
              f"final equity {result.metrics.final_equity:,.2f}")  # fmt: skip
    for name, ms in rows:
        target = TARGETS_MS.get(name)
        note = f"   (target <= {target:g} ms)" if target else ""
        print(f"{name:<45}{ms:10.2f} ms{note}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {rss_mb:,.0f} MB")


if __name__ == "__main__":
    main()
