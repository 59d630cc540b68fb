"""The example strategies in strategies/: causal, trading, and clear about bad parameters."""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import barlab
from barlab import StrategyError, load_strategy
from barlab.engine.backtest import to_target
from barlab.indicators import atr, donchian, rsi
from tests.conftest import make_bars

# small parameters, so that short random walks trade
SMALL = {
    "rsi_mean_reversion": {"n": 14},
    "rsi_mean_reversion_short": {"n": 14, "allow_short": True},
    "donchian_breakout": {"entry_n": 30, "exit_n": 15, "atr_n": 14, "atr_mult": 2.0},
    "momentum_rotation": {"lookback": 300, "rebalance_bars": 100, "top_k": 2},
}


def strategy(key: str):
    return load_strategy(key.removesuffix("_short"))(**SMALL[key])


def targets(s, bars) -> np.ndarray:
    """What the engine will do with the strategy's signals: +1/-1/0, NaN = no instruction."""
    return to_target(s.signals(bars), bars.close.shape)


@pytest.fixture(scope="module")
def walk():
    """Four symbols, 1,500 minute bars, with missing bars in one of them."""
    bars = make_bars(1500, 4, seed=7)
    for name in ("open", "high", "low", "close"):
        getattr(bars, name)[200:230, 1] = np.nan
        getattr(bars, name)[::97, 2] = np.nan
    return bars


@pytest.mark.parametrize("key", SMALL)
def test_signals_are_causal(key, walk):
    """Row t of the signals never changes when later bars are added."""
    s = strategy(key)
    full = targets(s, walk)
    for end in (400, 1001):
        np.testing.assert_array_equal(full[:end], targets(s, walk.slice(0, end)))


@pytest.mark.parametrize("key", SMALL)
def test_trades_on_a_random_walk(key, walk):
    result = barlab.backtest(strategy(key), walk)
    assert len(result.trades) >= 3


def test_the_defaults_trade_on_longer_bars():
    bars = make_bars(390 * 8, 3, seed=1)
    for name in ("rsi_mean_reversion", "donchian_breakout", "momentum_rotation"):
        assert len(barlab.backtest(load_strategy(name)(), bars).trades) > 0, name


def test_rsi_entries_and_exits_are_crosses(walk):
    s = load_strategy("rsi_mean_reversion")(n=10, allow_short=True)
    sig = s.signals(walk)
    level = rsi(walk.close, 10)
    for t, j in zip(*np.nonzero(sig.entries), strict=True):
        prev = level[:t, j][~np.isnan(level[:t, j])][-1]  # the previous present bar
        assert prev > 30.0 > level[t, j]
    for t, j in zip(*np.nonzero(sig.short_entries), strict=True):
        assert level[t, j] > 70.0
    assert sig.entries.any() and sig.exits.any() and sig.short_entries.any()
    assert load_strategy("rsi_mean_reversion")().signals(walk).short_entries is None


def test_donchian_stop_trails_the_highest_close(walk):
    p = SMALL["donchian_breakout"]
    target = targets(strategy("donchian_breakout"), walk)
    upper = donchian(walk.high, walk.low, p["entry_n"]).upper
    lower = donchian(walk.high, walk.low, p["exit_n"]).lower
    vol = atr(walk.high, walk.low, walk.close, p["atr_n"])
    exits = {"channel": 0, "stop": 0}
    for j in range(walk.n_symbols):
        rows = np.flatnonzero(~np.isnan(walk.close[:, j]))
        holding, best = False, 0.0
        for prev, t in itertools.pairwise(rows):
            c = walk.close[t, j]
            if not holding:
                holding = c > upper[prev, j]
                best = c
                assert (target[t, j] == 1.0) == holding
                continue
            best = max(best, c)
            channel, stop = c < lower[prev, j], c < best - p["atr_mult"] * vol[t, j]
            exits["channel"] += channel
            exits["stop"] += stop and not channel
            holding = not (channel or stop)
            assert (target[t, j] == 0.0) == (not holding)
    assert exits["channel"] > 0 and exits["stop"] > 0


def test_momentum_holds_the_top_k_with_weights_that_fill_the_account(walk):
    s = strategy("momentum_rotation")
    target = s.signals(walk).target
    rows = np.flatnonzero(~np.isnan(target).all(axis=1))
    assert rows.tolist() == list(range(399, 1500, 100))
    assert np.isnan(target[~np.isin(np.arange(1500), rows)]).all()
    for t in rows:
        held = np.flatnonzero(target[t] > 0)
        assert len(held) == 2 and np.all(target[t, held] == 4 / 2)
        close = walk.close
        ret = close[t] / close[t - 300] - 1
        ok = np.isfinite(ret)
        assert np.all(ret[held] >= np.max(np.where(ok, ret, -np.inf)[target[t] == 0], initial=-1))
    result = barlab.backtest(s, walk, fractional=True, slippage_bps=0.0)
    invested = np.abs(result.positions * walk.close).sum(axis=1) / result.equity
    assert np.nanmax(invested) > 0.97  # two symbols at half the account each, all of it at work


@pytest.mark.parametrize(
    ("name", "params", "words"),
    [
        ("rsi_mean_reversion", {"n": 0}, ["n must be >= 1", "--param n=14"]),
        ("rsi_mean_reversion", {"oversold": 60.0}, ["oversold < exit_level", "oversold=60.0"]),
        ("rsi_mean_reversion", {"overbought": 120}, ["overbought < 100", "e.g. 30, 50, 70"]),
        ("rsi_mean_reversion", {"allow_short": "sometimes"}, ["allow_short must be bool"]),
        ("donchian_breakout", {"entry_n": 0}, ["entry_n must be >= 1", "--param entry_n=55"]),
        ("donchian_breakout", {"atr_n": -3}, ["atr_n must be >= 1", "got -3"]),
        ("donchian_breakout", {"atr_mult": 0}, ["atr_mult must be a positive", "atr_mult=3"]),
        ("donchian_breakout", {"atr_mult": "inf"}, ["atr_mult must be a positive"]),
        ("momentum_rotation", {"top_k": 0}, ["top_k must be >= 1", "--param top_k=2"]),
        ("momentum_rotation", {"lookback": 2.5}, ["lookback must be int"]),
        ("momentum_rotation", {"rebalance_bars": 0}, ["rebalance_bars must be >= 1"]),
        ("momentum_rotation", {"topk": 3}, ["no parameter 'topk'", "top_k"]),
    ],
)
def test_bad_parameters_are_named(name, params, words):
    with pytest.raises(StrategyError) as err:
        load_strategy(name)(**params)
    for word in words:
        assert word in str(err.value)


def test_backtest_list_shows_them(tmp_path):
    exe = shutil.which("backtest", path=os.path.dirname(sys.executable))
    assert exe, "the backtest console script is not installed (pip install -e '.[dev]')"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BARLAB_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path)
    out = subprocess.run(
        [exe, "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    for line in (
        "rsi_mean_reversion  — RSI mean reversion",
        "oversold: float = 30.0",
        "donchian_breakout  — Donchian breakout with an ATR trailing stop",
        "atr_mult: float = 3.0",
        "momentum_rotation  — Momentum rotation",
        "lookback: int = 1950",
    ):
        assert line in out.stdout
