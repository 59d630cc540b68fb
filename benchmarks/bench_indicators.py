"""Indicator timings on one symbol-year of minute bars (98,280 bars), for 1 and 100 symbols.

    python benchmarks/bench_indicators.py            # prints figures; no pass/fail

Synthetic GBM prices with ~0.1 % per-minute volatility, every bar present. Each figure is the
best of several runs after a warm-up call that absorbs numba compilation (or the cache load).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from barlab.indicators import (
    atr,
    bollinger,
    donchian,
    ema,
    ffill,
    macd,
    rolling_std,
    rsi,
    sma,
    vwap,
    wma,
    zscore,
)

BARS_PER_YEAR = 390 * 252


def ohlcv(n_symbols: int, n_bars: int = BARS_PER_YEAR, seed: int = 42) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, (n_bars, n_symbols)), axis=0))
    spread = 1.0 + rng.uniform(0.0, 0.001, close.shape)
    return {
        "high": close * spread,
        "low": close / spread,
        "close": close,
        "volume": rng.uniform(100.0, 10_000.0, close.shape),
        "session": np.arange(n_bars, dtype=np.int64) // 390,
    }


CASES: dict[str, Callable[[dict[str, np.ndarray]], object]] = {
    "sma(20)": lambda d: sma(d["close"], 20),
    "ema(20)": lambda d: ema(d["close"], 20),
    "wma(20)": lambda d: wma(d["close"], 20),
    "rsi(14)": lambda d: rsi(d["close"], 14),
    "atr(14)": lambda d: atr(d["high"], d["low"], d["close"], 14),
    "rolling_std(20)": lambda d: rolling_std(d["close"], 20),
    "zscore(20)": lambda d: zscore(d["close"], 20),
    "bollinger(20, 2)": lambda d: bollinger(d["close"], 20),
    "macd(12, 26, 9)": lambda d: macd(d["close"]),
    "donchian(55)": lambda d: donchian(d["high"], d["low"], 55),
    "donchian(390)": lambda d: donchian(d["high"], d["low"], 390),
    "vwap": lambda d: vwap(d["close"], d["volume"], session_id=d["session"]),
    "ffill": lambda d: ffill(d["close"]),
}


def best_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    fn()  # compile or load from the cache
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1e3


def main() -> None:
    data = {m: ohlcv(m) for m in (1, 100)}
    print(f"{'indicator':<18}{'1 symbol':>12}{'100 symbols':>14}{'ns/value':>10}")
    for name, case in CASES.items():
        one = best_ms(lambda case=case: case(data[1]))
        many = best_ms(lambda case=case: case(data[100]))
        per_value = many * 1e6 / (100 * BARS_PER_YEAR)
        print(f"{name:<18}{one:>9.2f} ms{many:>11.1f} ms{per_value:>10.1f}")


if __name__ == "__main__":
    main()
