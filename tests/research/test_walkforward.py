"""Walk-forward: the fold arithmetic on a hand-made calendar, each fold's choice against a sweep
of its train window, the out-of-sample segments against independent backtests, saving."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import math

import numpy as np
import polars as pl
import pytest

import barlab
from barlab.errors import ConfigError, StrategyError
from barlab.metrics import compute_metrics
from barlab.research import walkforward as wf_mod
from barlab.research.splits import make_folds, parse_period
from barlab.research.walkforward import _choose, load_walk_forward, walk_forward
from barlab.strategy import load_strategy
from tests.conftest import make_bars

SMA = load_strategy("sma_crossover")
OPTIONS = {"commission_rate": 0.0005, "slippage_bps": 1.0}
GRID = {"fast": [3, 5, 8], "slow": [20, 40]}


def weekdays(first: str, last: str) -> np.ndarray:
    """One bar a day at 15:00 UTC on every weekday (a calendar without holidays)."""
    days = np.arange(np.datetime64(first), np.datetime64(last) + 1)
    days = days[np.is_busday(days)]
    return days.astype("datetime64[ns]").astype(np.int64) + 15 * 3_600 * 10**9


def dates(ts: np.ndarray, rows: list[int]) -> list[str]:
    return [str(np.datetime64(int(ts[r]), "ns").astype("datetime64[D]")) for r in rows]


@pytest.fixture(scope="module")
def bars():
    # 40 one-hour "sessions" of 60 one-minute bars, on consecutive calendar days
    return make_bars(2_400, 2, seed=7, bars_per_day=60)


@pytest.fixture(scope="module")
def result(bars):
    return walk_forward(SMA, bars, train="10D", test="5D", options=OPTIONS, n_jobs=1, **GRID)


# -- the fold arithmetic ----------------------------------------------------------------------


def test_rolling_months_from_the_first_of_the_month():
    ts = weekdays("2023-01-02", "2023-12-29")
    folds = make_folds(
        ts, train="3M", test="1M", start=dt.date(2023, 1, 1), end=dt.date(2023, 12, 31)
    )
    assert len(folds) == 9  # tests April .. December
    first, last = folds[0], folds[-1]
    assert dates(ts, [first.train_start, first.test_start - 1]) == ["2023-01-02", "2023-03-31"]
    assert dates(ts, [first.test_start, first.test_end - 1]) == ["2023-04-03", "2023-04-28"]
    assert dates(ts, [last.train_start, last.test_start, last.test_end - 1]) == [
        "2023-09-01", "2023-12-01", "2023-12-29",
    ]  # fmt: skip
    # each test window starts where the last one ended
    assert all(a.test_end == b.test_start for a, b in itertools.pairwise(folds))
    assert folds[-1].test_end == len(ts)


def test_anchored_and_step_and_sessions():
    ts = weekdays("2023-01-02", "2023-12-29")
    anchored = make_folds(ts, train="3M", test="1M", anchored=True, start=dt.date(2023, 1, 1))
    assert [f.train_start for f in anchored] == [0] * 9
    assert [f.test_start for f in anchored][1:] == [f.test_end for f in anchored][:-1]
    stepped = make_folds(ts, train="3M", test="1M", step="2M", start=dt.date(2023, 1, 1))
    assert [dates(ts, [f.test_start])[0][:7] for f in stepped] == [
        "2023-04", "2023-06", "2023-08", "2023-10", "2023-12",
    ]  # fmt: skip
    sessions = make_folds(ts[:60], train="20D", test="5D")
    assert [(f.train_start, f.test_start, f.test_end) for f in sessions] == [
        (5 * k, 20 + 5 * k, 25 + 5 * k) for k in range(8)
    ]
    # without a start, months count from the first session (Jan 2): the December window ends
    # on Tuesday Jan 2 2024, past the data (Friday Dec 29 and its weekend), and is dropped
    assert len(make_folds(ts, train="3M", test="1M")) == 8
    # a data set ending on a Friday completes a window ending on the Monday after it
    assert len(make_folds(ts[ts < ts[-1] - 2 * 86_400 * 10**9], train="3M", test="1M")) == 8


def test_whole_sessions_only(bars):
    folds = make_folds(bars.ts_ns, train="10D", test="5D")
    assert len(folds) == 6
    for f in folds:
        assert (f.train_start % 60, f.test_start % 60, f.test_end % 60) == (0, 0, 0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train": "6m"}, "did you mean 6M"),
        ({"train": "six months"}, "is not a period"),
        ({"train": "1.5M"}, "is not a period"),
        ({"test": "0M"}, "is empty"),
        ({"step": "5D"}, "step 5D is shorter than test 1M"),
        ({"train": "6M"}, "needs at least 7 months of bars"),
    ],
)
def test_bad_windows_are_named(kwargs, message):
    ts = weekdays("2023-01-02", "2023-03-31")
    with pytest.raises(ConfigError, match=message):
        make_folds(ts, **{"train": "1M", "test": "1M", **kwargs})


def test_too_short_names_the_data():
    ts = weekdays("2023-01-02", "2023-03-31")
    with pytest.raises(ConfigError) as e:
        make_folds(ts, train="6M", test="1M")
    assert "the data has 65 sessions (about 2.9 months) from 2023-01-02 to 2023-03-31" in str(
        e.value
    )
    assert parse_period("1Y").months == 12 and parse_period("2W").days == 14


# -- the walk-forward ---------------------------------------------------------------------------


def test_each_fold_picks_the_best_row_of_its_train_sweep(bars, result):
    assert result.folds.height == 6 and result.info["n_folds"] == 6
    for row in result.folds.iter_rows(named=True):
        train = bars.slice(row["train_start_row"], row["test_start_row"])
        sw = barlab.sweep(SMA, train, options=OPTIONS, n_jobs=1, **GRID)
        sharpe = sw.table["sharpe"].fill_nan(None)
        assert row["is_sharpe"] == row["is_objective"] == sharpe.max()
        if (sharpe == sharpe.max()).sum() == 1:
            assert sw.best("sharpe") == {"fast": row["fast"], "slow": row["slow"]}


def test_oos_segments_equal_independent_backtests(bars, result):
    level = 100_000.0
    for row in result.folds.iter_rows(named=True):
        params = {"fast": row["fast"], "slow": row["slow"]}
        first, mid, end = row["train_start_row"], row["test_start_row"], row["test_end_row"]
        full = barlab.backtest(SMA(**params), bars.slice(first, end), **OPTIONS)
        expected = full.equity[mid - first :] / full.equity[mid - first - 1]
        seg = result.oos.filter(pl.col("fold") == row["fold"])
        assert seg["ts"].cast(pl.Int64).to_list() == bars.ts_ns[mid:end].tolist()
        np.testing.assert_allclose(seg["equity"].to_numpy(), level * expected, rtol=1e-12)
        assert row["oos_total_return"] == pytest.approx(expected[-1] - 1, rel=1e-9)
        level = seg["equity"][-1]
    assert result.oos["equity"][-1] == level


def test_stitched_curve_is_continuous_and_measured(bars, result):
    oos = result.oos
    assert oos["ts"].is_sorted() and oos["fold"].to_list() == sorted(oos["fold"].to_list())
    # no jumps at the joins: every bar-to-bar move is a move of some fold's account
    returns = np.diff(oos["equity"].to_numpy()) / oos["equity"].to_numpy()[:-1]
    assert np.abs(returns).max() < 0.05
    m = compute_metrics(
        oos["equity"].to_numpy(), periods_per_year=bars.periods_per_year, initial_cash=100_000,
        trade_pnl=np.zeros(0), position_mask=None, fees=0.0,
    )  # fmt: skip
    assert result.oos_metrics.total_return == pytest.approx(m.total_return, rel=1e-12)
    assert result.oos_metrics.sharpe == pytest.approx(m.sharpe, rel=1e-12)
    assert result.oos_metrics.n_trades == result.folds["oos_n_trades"].sum()
    assert result.oos_metrics.fees == pytest.approx(result.folds["oos_fees"].sum())
    d = result.degradation
    assert d.metric == "sharpe"
    assert d.is_mean == pytest.approx(result.folds["is_sharpe"].mean())
    assert d.mean == pytest.approx((result.folds["oos_sharpe"] - result.folds["is_sharpe"]).mean())
    assert math.isnan(d.efficiency) or d.efficiency == pytest.approx(d.oos_mean / d.is_mean)


def test_save_and_load_round_trip(tmp_path, result):
    path = result.save(tmp_path, config={"note": "x"})
    assert sorted(p.name for p in path.iterdir()) == [
        "folds.parquet", "oos_equity.parquet", "run.json",
    ]  # fmt: skip
    assert [p.name for p in (tmp_path / "runs").iterdir()] == [path.name]  # no temp dir left
    doc = json.loads((path / "run.json").read_text())
    assert doc["kind"] == "walkforward" and doc["run_id"] == path.name
    assert doc["info"]["grid"] == GRID and doc["info"]["train"] == "10D"
    back = load_walk_forward(path.name, reports_dir=tmp_path)
    assert back.folds.equals(result.folds) and back.oos.equals(result.oos)
    assert back.oos_metrics == result.oos_metrics or _same(back.oos_metrics, result.oos_metrics)
    assert back.degradation.metric == result.degradation.metric
    assert back.best_params() == result.best_params() and back.run_id == path.name


def _same(a, b) -> bool:
    x, y = a.to_dict(), b.to_dict()
    return all(x[k] == y[k] or (math.isnan(x[k]) and math.isnan(y[k])) for k in x)


def test_anchored_total_return_and_callable_objective(bars):
    anchored = walk_forward(
        SMA, bars, train="20D", test="10D", anchored=True, objective="total_return",
        n_jobs=1, fast=[3, 5], slow=[20],
    )  # fmt: skip
    assert anchored.folds["train_start_row"].to_list() == [0, 0]
    assert anchored.degradation.metric == "cagr"  # window lengths differ: compare annualised

    def calm(m):
        return m.total_return - abs(m.max_drawdown)

    custom = walk_forward(
        SMA, bars, train="20D", test="10D", objective=calm, n_jobs=1, fast=[3, 5], slow=[20]
    )
    assert custom.info["objective"] == "calm"
    for row in custom.folds.iter_rows(named=True):
        assert row["is_objective"] == pytest.approx(
            row["is_total_return"] - abs(row["is_max_drawdown"])
        )


def test_ties_go_to_the_smallest_parameters():
    base = {name: 0.0 for name in wf_mod.METRIC_NAMES} | {"max_drawdown_duration": 0}
    base["n_trades"] = 0
    rows = [
        {"fast": 8, "slow": 20, **base, "sharpe": 1.0},
        {"fast": 3, "slow": 40, **base, "sharpe": float("nan")},
        {"fast": 5, "slow": 20, **base, "sharpe": 1.0},
        {"fast": 5, "slow": 10, **base, "sharpe": 1.0},
    ]
    params, metrics = _choose(pl.DataFrame(rows), ["fast", "slow"], lambda m: m.sharpe)
    assert params == {"fast": 5, "slow": 10} and metrics.sharpe == 1.0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fats": [3]}, StrategyError, "has no parameter 'fats'; it takes fast, slow"),
        ({"fast": []}, StrategyError, "no values"),
        ({"fast": None}, StrategyError, "nothing to optimise"),
        ({"objective": "sharp"}, ConfigError, "unknown objective 'sharp'"),
        ({"train": "2M"}, ConfigError, r"needs at least 2M \+ 5D of bars"),
        ({"where": "fast < slw"}, StrategyError, "unknown name 'slw'"),
        ({"options": {"slipage_bps": 1}}, ConfigError, "unknown backtest option"),
    ],
)
def test_bad_input_fails_before_any_sweep(bars, monkeypatch, kwargs, error, message):
    def no_sweep(*args, **kw):
        raise AssertionError("a sweep started")

    monkeypatch.setattr(wf_mod, "_sweep", no_sweep)
    args = {"train": "10D", "test": "5D", "fast": [3], **kwargs}
    with pytest.raises(error, match=message):
        walk_forward(SMA, bars, **{k: v for k, v in args.items() if v is not None})
