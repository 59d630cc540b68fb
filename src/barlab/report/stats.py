"""The report's numbers beyond :class:`~barlab.metrics.Metrics`: median, best and worst trade,
holding time, turnover and slippage, for the strategy and for buy-and-hold.

Every figure is a :mod:`barlab.metrics` function over the Result's arrays; this module only
picks the inputs (the fills from the order log, or from the benchmark's trades, which is all a
saved run keeps of buy-and-hold).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from barlab import metrics

if TYPE_CHECKING:
    from barlab.result import Result


def _extras(
    result: Result, equity: np.ndarray, trades: pl.DataFrame, notional: np.ndarray, side: np.ndarray
) -> dict[str, float]:
    held = (trades["exit_bar"] - trades["entry_bar"]).to_numpy().astype(np.float64)
    t = metrics.trade_stats(trades["pnl"].to_numpy(), holding_bars=held)
    costs = result.info["options"]["costs"]
    return {
        "median_trade": t.median_trade,
        "best_trade": t.best_trade,
        "worst_trade": t.worst_trade,
        "avg_holding_bars": t.avg_holding_bars,
        "turnover": metrics.turnover(
            float(np.abs(notional).sum()), np.asarray(equity, np.float64),
            periods_per_year=float(result.info["periods_per_year"]),
        ),
        "slippage": metrics.slippage_cost(notional, side, slippage_bps=costs["slippage_bps"]),
    }  # fmt: skip


def _order_fills(orders: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    filled = orders.filter(pl.col("status") != "refused")
    side = np.where(filled["side"].to_numpy() == "buy", 1.0, -1.0)
    return (filled["qty"] * filled["price"]).to_numpy().astype(np.float64), side


def _trade_fills(trades: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Fills of round trips: each entry, and each exit that happened (not the last-bar mark)."""
    sign = np.where(trades["direction"].to_numpy() == "long", 1.0, -1.0)
    closed = ~trades["is_open"].to_numpy()
    size = trades["size"].to_numpy()
    notional = np.concatenate(
        [size * trades["entry_price"].to_numpy(), (size * trades["exit_price"].to_numpy())[closed]]
    )
    return notional.astype(np.float64), np.concatenate([sign, -sign[closed]])


def report_metrics(result: Result) -> tuple[dict[str, float], dict[str, float]]:
    """Every row of the metrics table by name: ``(strategy, buy_and_hold)``."""
    mine = result.metrics.to_dict() | _extras(
        result, result.equity, result.trades, *_order_fills(result.orders)
    )
    bench_trades = result.benchmark_trades
    theirs = result.benchmark_metrics.to_dict() | _extras(
        result, result.benchmark_equity, bench_trades, *_trade_fills(bench_trades)
    )
    return mine, theirs
