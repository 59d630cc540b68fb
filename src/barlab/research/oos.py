"""Measuring chosen parameters out of sample: one fold's test segment, and the chained record.

A fold's parameters are backtested on the bars from its *train start* through its test end and
only the test rows are kept, rebased to the last train bar (growth 1.0 = unchanged). So the
indicators are warmed up on the train window, and a position held at the end of the train
window is carried into the test window, exactly as if the strategy had been trading those
parameters all along. The engine is causal (row t uses rows <= t only), so no test bar reaches
back into the choice of parameters, which was made on the train rows alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from barlab.bars import Bars
from barlab.engine.backtest import backtest
from barlab.metrics import Metrics, compute_metrics
from barlab.research.splits import Fold
from barlab.strategy import Strategy

_TS = pl.Datetime("ns", "UTC")


@dataclass(frozen=True, slots=True)
class Segment:
    """One fold's test rows (``fold`` numbered from 1): growth of the account and of
    buy-and-hold relative to the last train bar (1.0 = unchanged), positions open, trade P&L
    and fees."""

    fold: int
    ts_ns: np.ndarray
    growth: np.ndarray
    benchmark: np.ndarray
    in_market: np.ndarray
    trade_pnl: np.ndarray
    fees: float
    metrics: Metrics


def oos_segment(
    strategy: Strategy, bars: Bars, fold: Fold, options: dict[str, Any], cash: float
) -> Segment:
    run = backtest(strategy, bars.slice(fold.train_start, fold.test_end), **options)
    j = fold.test_start - fold.train_start  # >= 1: the train window is never empty
    growth = run.equity[j:] / run.equity[j - 1]
    in_market = np.any(run.positions[j:] != 0.0, axis=1)
    trades = run.trades.filter(pl.col("exit_bar") >= j)
    fees = float(run.orders.filter(pl.col("fill_bar") >= j)["fee"].sum())
    pnl = trades["pnl"].to_numpy()
    metrics = compute_metrics(
        cash * growth, periods_per_year=bars.periods_per_year, initial_cash=cash,
        trade_pnl=pnl, position_mask=in_market, fees=fees,
    )  # fmt: skip
    bench = run.benchmark_equity
    return Segment(
        fold.index + 1,
        run.ts_ns[j:],
        growth,
        bench[j:] / bench[j - 1],
        in_market,
        pnl,
        fees,
        metrics,
    )


def stitch(segments: list[Segment], bars: Bars, cash: float) -> tuple[pl.DataFrame, Metrics]:
    """Chain the folds' test returns into one account that starts with ``cash``."""
    equity, bench = [], []
    level, bench_level = cash, cash
    for s in segments:
        equity.append(level * s.growth)
        bench.append(bench_level * s.benchmark)
        level, bench_level = float(equity[-1][-1]), float(bench[-1][-1])
    eq = np.concatenate(equity)
    in_market = np.concatenate([s.in_market for s in segments])
    frame = pl.DataFrame({
        "ts": pl.Series(np.concatenate([s.ts_ns for s in segments]), dtype=pl.Int64).cast(_TS),
        "fold": pl.Series(np.concatenate([np.full(len(s.growth), s.fold) for s in segments]),
                          dtype=pl.Int64),
        "equity": eq, "benchmark": np.concatenate(bench), "in_market": in_market,
    })  # fmt: skip
    metrics = compute_metrics(
        eq, periods_per_year=bars.periods_per_year, initial_cash=cash,
        trade_pnl=np.concatenate([s.trade_pnl for s in segments]), position_mask=in_market,
        fees=sum(s.fees for s in segments),
    )  # fmt: skip
    return frame, metrics
