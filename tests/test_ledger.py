"""Per-bar positions and P&L: realized + unrealized - fees adds up to the engine's equity."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings

import barlab
from barlab.engine.backtest import BacktestOptions, simulate
from barlab.engine.costs import Costs
from barlab.errors import DataError
from barlab.ledger import pnl_frame
from barlab.result import load_run, orders_frame
from tests.conftest import make_bars
from tests.engine.test_kernel import scenarios


@settings(max_examples=120, deadline=None)
@given(case=scenarios())
def test_pnl_adds_up_to_the_equity_on_every_bar(case):
    bars, target, options, orders = case
    sim = simulate(bars, target, options, **orders)
    symbols = list(bars.symbols)
    frame = pnl_frame(
        orders=orders_frame(sim, bars.ts_ns, symbols), positions=sim.positions,
        close=bars.close, ts_ns=bars.ts_ns, symbols=symbols,
    )  # fmt: skip
    per_bar = frame.group_by("time", maintain_order=True).agg(pl.col("pnl").sum())["pnl"]
    scale = max(1.0, float(np.abs(sim.equity).max()))
    assert np.allclose(options.cash + per_bar.to_numpy(), sim.equity, rtol=0, atol=1e-7 * scale)
    assert np.array_equal(frame["position"].to_numpy(), sim.positions.ravel())
    flat = frame.filter(pl.col("position") == 0)
    assert flat["unrealized"].abs().max() in (None, 0.0) and flat["avg_price"].is_nan().all()


def test_a_round_trip_realizes_its_pnl_and_the_fees_stay_apart():
    bars = make_bars(6, 1, seed=1)
    target = np.full((6, 1), np.nan)
    target[0], target[3] = 1.0, 0.0  # buy at bar 1's open, sell at bar 4's open
    options = BacktestOptions(
        cash=1_000.0, fractional=True, costs=Costs(commission_per_order=1.0, slippage_bps=0.0)
    )
    sim = simulate(bars, target, options)
    frame = pnl_frame(orders=orders_frame(sim, bars.ts_ns, ["S0"]), positions=sim.positions,
                      close=bars.close, ts_ns=bars.ts_ns, symbols=["S0"])  # fmt: skip
    qty = sim.positions[1, 0]
    buy, sell = bars.open[1, 0], bars.open[4, 0]
    row = frame.row(4, named=True)
    assert row["position"] == 0.0 and row["realized"] == pytest.approx((sell - buy) * qty)
    assert row["fees"] == 2.0 and row["pnl"] == pytest.approx((sell - buy) * qty - 2.0)
    held = frame.row(2, named=True)
    assert held["avg_price"] == buy and held["realized"] == 0.0
    assert held["unrealized"] == pytest.approx(qty * (bars.close[2, 0] - buy))


def test_result_pnl_and_a_loaded_run_without_bars(tmp_path):
    bars = make_bars(300, 2, seed=4)
    result = barlab.backtest(barlab.load_strategy("sma_crossover")(fast=3, slow=10), bars)
    assert result.pnl.height == 300 * 2
    assert result.pnl.columns == ["time", "symbol", "position", "avg_price", "mark", "realized",
                                  "unrealized", "fees", "pnl"]  # fmt: skip
    saved = result.save(tmp_path, report=False)
    loaded = load_run(saved.run_id, reports_dir=tmp_path)
    with pytest.raises(DataError, match="needs them"):
        loaded.pnl  # noqa: B018
