"""Result: save under reports/runs/<id>/, load back bit for bit with the same metrics."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import barlab
from barlab.errors import RunNotFoundError
from tests.conftest import make_bars


@pytest.fixture
def result():
    bars = make_bars(n=2_000, m=2, seed=3)
    strategy = barlab.load_strategy("sma_crossover")(fast=5, slow=30, allow_short=True)
    return barlab.backtest(strategy, bars, commission_rate=0.001, slippage_bps=2.0)


def test_result_has_trades_orders_and_metrics(result):
    assert result.metrics.n_trades == result.trades.height > 10
    filled = result.orders.filter(pl.col("status") == "filled")
    assert filled.height <= result.trades.height <= 2 * filled.height  # a reversal opens one
    assert result.metrics.fees == pytest.approx(result.orders["fee"].sum())
    assert result.metrics.final_equity == result.equity[-1]
    assert result.benchmark_trades.height == 2  # one buy-and-hold position per symbol
    assert result.synthetic and "SYNTHETIC" in repr(result)


def test_saved_run_loads_back_identically(result, tmp_path):
    saved = result.save(tmp_path, config={"risk": {"daily_loss_limit": None}}, report=False)
    run_dir = tmp_path / "runs" / saved.run_id
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "benchmark_trades.parquet",
        "equity.parquet",
        "orders.parquet",
        "positions.parquet",
        "run.json",
        "trades.parquet",
    ]
    loaded = barlab.load_run(saved.run_id, reports_dir=tmp_path)
    assert loaded.metrics == result.metrics
    assert loaded.benchmark_metrics == result.benchmark_metrics
    np.testing.assert_array_equal(loaded.equity, result.equity)
    np.testing.assert_array_equal(loaded.positions, result.positions)
    assert loaded.trades.equals(result.trades)
    assert loaded.orders.equals(result.orders)
    assert loaded.info == json.loads(json.dumps(result.info))
    doc = json.loads((run_dir / "run.json").read_text())
    assert doc["metrics"] == pytest.approx(result.metrics.to_dict(), nan_ok=True)
    assert doc["info"]["strategy_hash"] and doc["info"]["params"]["allow_short"] is True


def test_two_saves_get_distinct_ids(result, tmp_path):
    a = result.save(tmp_path, report=False).run_id
    b = result.save(tmp_path, report=False).run_id
    assert a != b
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name.startswith(".tmp")]


def test_failed_save_leaves_nothing(result, tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", boom)
    with pytest.raises(OSError):
        result.save(tmp_path, report=False)
    assert list((tmp_path / "runs").iterdir()) == []


def test_unknown_run_is_a_clear_error(tmp_path):
    with pytest.raises(RunNotFoundError, match="no saved run 'nope'"):
        barlab.load_run("nope", reports_dir=tmp_path)


def test_identical_backtests_are_bit_identical():
    bars = make_bars(n=3_000, m=3, seed=9)
    strategy = barlab.load_strategy("sma_crossover")()
    a, b = barlab.backtest(strategy, bars), barlab.backtest(strategy, bars)
    assert a.equity.tobytes() == b.equity.tobytes()
    assert a.orders.equals(b.orders) and a.metrics == b.metrics


def test_buy_and_hold_ignores_risk_rules_and_exits():
    bars = make_bars(n=2_000, m=3, seed=4)
    strategy = barlab.load_strategy("sma_crossover")(fast=5, slow=30)
    plain = barlab.backtest(strategy, bars)
    ruled = barlab.backtest(strategy, bars, max_open_positions=1, stop_loss=0.001)
    np.testing.assert_array_equal(plain.benchmark_equity, ruled.benchmark_equity)
    assert ruled.benchmark_trades.height == 3
