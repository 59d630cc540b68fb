"""Sweeps: every row equals a full backtest; constraints, invalid combinations, chunking."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest

import barlab
from barlab.engine import sweep as sweep_mod
from barlab.engine.backtest import Account, BacktestOptions, to_target
from barlab.engine.fused import RowRunner
from barlab.engine.sweep import sweep
from barlab.engine.sweep_plan import compile_where, plan
from barlab.engine.sweep_result import METRIC_NAMES
from barlab.errors import ConfigError, StrategyError
from barlab.indicators import sma
from barlab.strategy import Signals, Strategy, load_strategy
from tests.conftest import make_bars

SMA = load_strategy("sma_crossover")
OPTIONS = {
    "commission_rate": 0.001,
    "slippage_bps": 2.0,
    "stop_loss": 0.01,
    "daily_loss_limit": 500.0,
    "max_position_size": 40_000.0,
}


@pytest.fixture(scope="module")
def bars():
    return make_bars(1_200, 2, seed=3)


def _same(a, b) -> bool:
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return a == b


def test_every_row_equals_a_full_backtest(bars):
    result = sweep(
        SMA, bars, fast=[3, 5, 8], slow=range(10, 40, 10), allow_short=[False, True],
        n_jobs=2, **OPTIONS,
    )  # fmt: skip
    assert result.n_run == 18 and result.table.height == 18
    assert result.table.columns == ["fast", "slow", "allow_short", *METRIC_NAMES]
    for row in result.table.sample(6, seed=1).iter_rows(named=True):
        params = {k: row[k] for k in ("fast", "slow", "allow_short")}
        expected = barlab.backtest(SMA(**params), bars, **OPTIONS).metrics.to_dict()
        for name in METRIC_NAMES:
            assert _same(float(row[name]), expected[name]), (params, name)


def test_sorted_by_sharpe_and_best_reruns(bars):
    result = sweep(SMA, bars, fast=[3, 5, 8], slow=[20, 30], **OPTIONS)
    sharpe = result.table["sharpe"].fill_nan(None).drop_nulls().to_list()
    assert sharpe == sorted(sharpe, reverse=True)
    best = result.best()
    assert best == {k: result.table.row(0, named=True)[k] for k in ("fast", "slow")}
    full = result.rerun(best)
    assert full.info["params"]["fast"] == best["fast"]
    assert full.metrics.sharpe == result.table["sharpe"][0]
    by_return = result.best("total_return")
    assert by_return["fast"] in (3, 5, 8)
    with pytest.raises(ConfigError, match="unknown metric"):
        result.best("sharp")


def test_constraint_and_invalid_combinations_are_counted(bars):
    # fast >= slow is invalid for the strategy; fast = 8 is excluded by the constraint
    result = sweep(
        SMA, bars, fast=[3, 8, 20, 30], slow=[10, 20], where=lambda p: p["fast"] != 8,
    )  # fmt: skip
    assert result.n_grid == 8
    assert result.n_skipped == 2
    assert result.n_invalid == 4  # fast >= slow: (20, 10), (20, 20), (30, 10), (30, 20)
    assert result.n_run == 2
    assert sorted(result.table.select("fast", "slow").rows()) == [(3, 10), (3, 20)]


def test_string_constraint(bars):
    result = sweep(SMA, bars, fast=[3, 5, 30], slow=[10, 20], where="fast < slow and fast != 5")
    assert result.n_skipped == 4 and result.n_invalid == 0 and result.n_run == 2
    assert result.where == "fast < slow and fast != 5"


def test_compile_where_is_safe():
    where = compile_where("fast * 2 <= slow", ["fast", "slow"])
    assert where({"fast": 10, "slow": 20}) and not where({"fast": 11, "slow": 20})
    with pytest.raises(StrategyError, match=r"unknown name 'fsat'.*fast, slow"):
        compile_where("fsat < slow", ["fast", "slow"])
    for bad in ("__import__('os')", "fast.real < 1", "(lambda: 1)()", "[fast][0]", "fast <"):
        with pytest.raises(StrategyError):
            compile_where(bad, ["fast", "slow"])


def test_bad_grids_fail_before_any_work(bars, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("no backtest should run")

    monkeypatch.setattr(sweep_mod._Job, "run", boom)
    with pytest.raises(StrategyError, match="leaves none of the 4"):
        sweep(SMA, bars, fast=[30, 40], slow=[10, 20], where="fast < slow")
    with pytest.raises(StrategyError, match=r"no parameter 'fats'.*fast, slow, allow_short"):
        plan(SMA, {"fats": [1]})
    with pytest.raises(StrategyError, match="no values"):
        sweep(SMA, bars, fast=[], slow=[10])
    with pytest.raises(StrategyError, match="nothing to sweep"):
        sweep(SMA, bars)
    with pytest.raises(StrategyError, match="none of the 2 combinations is valid"):
        sweep(SMA, bars, fast=[30, 40], slow=[10])
    with pytest.raises(StrategyError, match="must be int"):
        sweep(SMA, bars, fast=[2.5], slow=[10])
    with pytest.raises(ConfigError, match=r"unknown backtest option.*fast, slow"):
        sweep(SMA, bars, fast=[3], slow=[10], comission_rate=0.001)


class DipBuyer(Strategy):
    """Limit orders below the close, day orders: the sweep must pass them like backtest()."""

    name = "dip_buyer"
    window: int = 10
    dip: float = 0.002

    def signals(self, bars):
        avg = sma(bars.close, self.window)
        target = np.where(bars.close < avg, 1.0, np.where(bars.close > avg, 0.0, np.nan))
        limit = np.where(target == 1.0, bars.close * (1 - self.dip), np.nan)
        return Signals(target=target, limit_price=limit, time_in_force="day")


def test_rows_with_limit_orders_equal_a_full_backtest(bars):
    result = sweep(DipBuyer, bars, window=[5, 20], dip=[0.0, 0.003], **OPTIONS)
    for row in result.table.iter_rows(named=True):
        params = {"window": row["window"], "dip": row["dip"]}
        full = barlab.backtest(DipBuyer(**params), bars, **OPTIONS).metrics
        for name in METRIC_NAMES:
            assert _same(row[name], getattr(full, name)), (params, name)


class BreakoutBuyer(Strategy):
    """Stop entry orders sized as weights: more of the kernel's inputs a sweep passes."""

    name = "breakout_buyer"
    window: int = 10
    above: float = 0.002

    def signals(self, bars):
        avg = sma(bars.close, self.window)
        target = np.where(bars.close > avg, 0.5, np.where(bars.close < avg, 0.0, np.nan))
        stop = np.where(target == 0.5, bars.close * (1 + self.above), np.nan)
        return Signals(target=target, stop_price=stop, size_type="weight")


def test_rows_with_stop_orders_and_weights_equal_a_full_backtest(bars):
    result = sweep(BreakoutBuyer, bars, window=[5, 20], above=[0.0005, 0.003], **OPTIONS)
    assert result.table["n_trades"].min() > 0
    for row in result.table.iter_rows(named=True):
        params = {"window": row["window"], "above": row["above"]}
        full = barlab.backtest(BreakoutBuyer(**params), bars, **OPTIONS).metrics
        for name in METRIC_NAMES:
            assert _same(row[name], getattr(full, name)), (params, name)


def test_a_tight_memory_budget_gives_the_same_table(bars, monkeypatch):
    grid = {"fast": [3, 5, 8], "slow": [10, 20, 30]}
    whole = sweep(SMA, bars, n_jobs=2, **grid, **OPTIONS)
    # one combination in flight is 4 x 8 x 2,400 bytes (~0.07 MB): 0.1 MB fits one worker and
    # next to no room for shared indicators, which are then computed again
    assert sweep_mod.memory_plan(bars, 0.1, 2)[0] == 1
    assert sweep_mod.memory_plan(bars, 512, 2) == (2, pytest.approx(512 - 2 * 0.128, abs=1e-3))
    tiny = sweep(SMA, bars, n_jobs=2, max_memory_mb=0.1, **grid, **OPTIONS)
    assert tiny.n_jobs == 1
    assert tiny.table.equals(whole.table)


def test_indicators_are_computed_once_per_window(bars, monkeypatch):
    caches: list = []
    real_of = sweep_mod._Job.of.__func__

    def spy(cls, *args):
        job = real_of(cls, *args)
        caches.append(job.shared)
        return job

    monkeypatch.setattr(sweep_mod._Job, "of", classmethod(spy))
    sweep(SMA, bars, n_jobs=1, fast=[3, 5, 8], slow=[10, 20, 30], **OPTIONS)
    (shared,) = caches
    assert shared.misses == 6  # 3 fast + 3 slow windows, for 9 combinations
    assert shared.hits == 2 * 9 - 6


def test_a_strategy_writing_into_a_shared_indicator_is_told_to_copy(bars):
    class Mutating(Strategy):
        name = "mutating"
        window: int = 5

        def signals(self, bars):
            avg = sma(bars.close, self.window)
            avg[:10] = np.nan  # in place: would corrupt the other combinations
            return Signals(target=np.where(bars.close > avg, 1.0, np.nan))

    with pytest.raises(StrategyError, match=r"copy before changing one"):
        sweep(Mutating, bars, window=[5, 6])
    assert barlab.backtest(Mutating(window=5), bars).metrics.n_trades >= 0  # alone: fine


def test_no_per_combination_arrays_are_kept(bars):
    result = sweep(SMA, bars, fast=[3, 5], slow=[10, 20])
    assert result.table.height == 4
    kept = [getattr(result, f) for f in result.__dataclass_fields__]
    assert not any(isinstance(v, np.ndarray) for v in kept)


def test_saved_sweep(bars, tmp_path):
    result = sweep(SMA, bars, fast=[3, 5], slow=[10, 20], where="fast < slow", cash=50_000)
    path = result.save(tmp_path)
    assert path.parent == tmp_path / "runs"
    assert pl.read_parquet(path / "sweep.parquet").equals(result.table)
    info = json.loads((path / "run.json").read_text())["info"]
    assert info["kind"] == "sweep" and info["strategy"] == "sma_crossover"
    assert info["grid"] == {"fast": [3, 5], "slow": [10, 20]}
    assert info["options"]["cash"] == 50_000 and info["n_run"] == 4
    assert info["data_version"] == bars.version
    again = json.loads((result.save(tmp_path, extra={"rerun_best": "x"}) / "run.json").read_text())
    assert again["info"] == {**info, "rerun_best": "x"}
    with pytest.raises(ConfigError, match="n_run would replace"):
        result.save(tmp_path, extra={"n_run": 0})


def test_process_executor_gives_the_same_table(bars):
    grid = {"fast": [3, 5, 8], "slow": [10, 20]}
    threads = sweep(SMA, bars, n_jobs=2, **grid, **OPTIONS)
    procs = sweep(SMA, bars, n_jobs=2, executor="process", **grid, **OPTIONS)
    assert procs.table.equals(threads.table)


def test_an_option_named_like_a_parameter_goes_in_options(bars):
    # BacktestOptions.allow_short (the account) vs SmaCrossover.allow_short (the strategy)
    result = sweep(
        SMA, bars, fast=[3], slow=[10], allow_short=[True], options={"allow_short": False}
    )
    assert result.grid == {"fast": [3], "slow": [10], "allow_short": [True]}
    expected = barlab.backtest(SMA(fast=3, slow=10, allow_short=True), bars, allow_short=False)
    assert result.table["total_return"][0] == expected.metrics.total_return
    with pytest.raises(ConfigError, match="given twice"):
        sweep(SMA, bars, fast=[3], slow=[10], cash=1e4, options={"cash": 2e4})


def test_a_worker_reusing_its_arrays_gives_every_backtest_exactly(bars):
    # many orders, few, many again: partial fills (5 % of a bar's volume) outgrow the log
    # capacity simulate() starts with, the logs grow, and the rows one run wrote (trade rows
    # accumulate) are cleared for the next
    options = {**OPTIONS, "max_participation": 0.05}
    opts = BacktestOptions.from_kwargs(**options)
    runner = RowRunner(bars, opts, Account.of(bars, opts))
    row = np.empty(len(METRIC_NAMES))
    overflowed = False
    for params in (
        {"fast": 3, "slow": 10},
        {"fast": 3, "slow": 10, "allow_short": True},
        {"fast": 20, "slow": 40},
        {"fast": 3, "slow": 10, "allow_short": True},
        {"fast": 8, "slow": 30},
    ):
        strategy = SMA(**params)
        signals = strategy.signals(bars)
        row[:] = np.nan
        runner.run(signals, row)
        full = barlab.backtest(strategy, bars, **options)
        expected = full.metrics.to_dict()
        for k, name in enumerate(METRIC_NAMES):
            assert _same(float(row[k]), expected[name]), (params, name)
        instructions = np.count_nonzero(~np.isnan(to_target(signals, bars.close.shape)))
        overflowed |= full.orders.height > 2 * instructions + 1
    assert overflowed


def test_metric_names_are_the_rows_columns():
    from barlab import metrics_nb

    assert METRIC_NAMES == metrics_nb.METRIC_FIELDS
