"""Optimisation: differential evolution finds the exhaustive best of a small grid, keeps
integers whole, evaluates each point once, in batches through barlab.sweep, deterministically."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest

import barlab
from barlab.errors import ConfigError, StrategyError
from barlab.research import optimize as opt_mod
from barlab.research.optimize import _groups, optimize
from barlab.strategy import load_strategy
from tests.conftest import make_bars

SMA = load_strategy("sma_crossover")
OPTIONS = {"commission_rate": 0.0005}


@pytest.fixture(scope="module")
def bars():
    return make_bars(1_500, 1, seed=11)


@pytest.fixture(scope="module")
def exhaustive(bars):
    return barlab.sweep(SMA, bars, fast=range(2, 9), slow=range(10, 21), options=OPTIONS, n_jobs=1)


@pytest.fixture(scope="module")
def found(bars):
    return optimize(SMA, bars, fast=(2, 8), slow=(10, 20), options=OPTIONS, n_jobs=1, seed=0)


def test_finds_the_best_point_of_the_grid(exhaustive, found):
    best_sharpe = exhaustive.table["sharpe"].fill_nan(None).max()
    assert found.best_value == pytest.approx(best_sharpe, rel=1e-12)
    row = exhaustive.table.filter(pl.col("sharpe") == best_sharpe).row(0, named=True)
    assert found.best_params["fast"] == row["fast"] and found.best_params["slow"] == row["slow"]
    assert found.best_metrics.sharpe == found.best_value
    assert found.n_evaluations <= 77 < found.n_candidates  # repeats answered from the cache


def test_integers_stay_whole_and_each_point_runs_once(found):
    t = found.table
    assert t["fast"].dtype == pl.Int64 and t["slow"].dtype == pl.Int64
    assert all(type(v) is int for v in found.best_params.values())
    assert t.select("fast", "slow").is_unique().all()
    assert t["fast"].is_between(2, 8).all() and t["slow"].is_between(10, 20).all()
    assert t["eval"].to_list() == list(range(t.height))
    assert found.n_evaluations == t["feasible"].sum() and found.n_infeasible == 0
    assert found.message and found.nit >= 1


def test_same_seed_same_search(bars, found):
    again = optimize(SMA, bars, fast=(2, 8), slow=(10, 20), options=OPTIONS, n_jobs=1, seed=0)
    assert again.table.equals(found.table) and again.best_params == found.best_params


def test_callable_objective_constraint_and_batches(bars, monkeypatch):
    calls = []
    real = barlab.sweep

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(barlab, "sweep", counting)

    def return_over_drawdown(m):
        return m.total_return / max(abs(m.max_drawdown), 1e-9)

    r = optimize(
        SMA, bars, objective=return_over_drawdown, fast=(2, 30), slow=(10, 30),
        allow_short=True, where="slow - fast >= 5", maxiter=5, popsize=6, n_jobs=1, seed=3,
    )  # fmt: skip
    assert len(calls) <= r.nit + 1  # one batch per generation (and the initial population)
    assert r.info["objective"] == "return_over_drawdown" and r.best_params["allow_short"] is True
    bad = r.table.filter(~pl.col("feasible"))
    assert r.n_infeasible == bad.height > 0
    assert (bad["slow"] - bad["fast"] < 5).all() and bad["objective"].is_nan().all()
    assert r.best_params["slow"] - r.best_params["fast"] >= 5
    m = r.best_metrics
    assert r.best_value == pytest.approx(m.total_return / max(abs(m.max_drawdown), 1e-9))


def test_rerun_and_save(tmp_path, found):
    full = found.rerun()
    assert full.metrics.sharpe == pytest.approx(found.best_value, rel=1e-12)
    path = found.save(tmp_path)
    doc = json.loads((path / "run.json").read_text())
    assert doc["kind"] == "optimize" and doc["run_id"] == path.name
    assert doc["best_params"] == found.best_params
    assert doc["info"]["bounds"] == {"fast": [2, 8], "slow": [10, 20]} and doc["info"]["seed"] == 0
    assert pl.read_parquet(path / "evaluations.parquet").equals(found.table)


def test_batches_are_split_to_keep_grids_small():
    keys = [(a, b) for a in range(10) for b in range(10)]
    groups = _groups(keys, 25)
    assert [k for g in groups for k in g] == keys
    for g in groups:
        assert math.prod(len({k[i] for k in g}) for i in range(2)) <= 25


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"fast": (100, 5)}, StrategyError, r"lo 100 is above hi 5; give \(5, 100\)"),
        ({"fast": (5.5, 10)}, StrategyError, "whole numbers"),
        ({"fast": (5,)}, StrategyError, r"expected \(lo, hi\)"),
        ({"fats": (5, 10)}, StrategyError, "has no parameter 'fats'"),
        ({"fast": 5, "slow": 50}, StrategyError, "nothing to optimise"),
        ({"objective": "sharp"}, ConfigError, "unknown objective"),
        ({"method": "anneal"}, ConfigError, "unknown method 'anneal'"),
        ({"maxiter": 0}, ConfigError, "maxiter must be a whole number >= 1"),
        ({"where": "fast < slw"}, StrategyError, "unknown name 'slw'"),
    ],
)
def test_bad_input_fails_before_any_backtest(bars, monkeypatch, kwargs, error, message):
    monkeypatch.setattr(opt_mod._Evaluator, "__call__", lambda *a: pytest.fail("evaluated"))
    args = {"slow": (20, 40), **({"fast": (2, 8)} if "fast" not in kwargs else {}), **kwargs}
    with pytest.raises(error, match=message):
        optimize(SMA, bars, **args)
