"""Attached exits in live trading: levels on the broker's tick by the engine's rule, the ATR
stepped bar by bar to the bit of the backtest's, and the exits the bridge refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from barlab.engine.backtest import BacktestOptions
from barlab.errors import ConfigError
from barlab.indicators import atr
from barlab.live.exits import ExitRule, RunningAtr, tick_price


def test_prices_go_on_alpacas_tick():
    assert tick_price(97.8824) == 97.88 and tick_price(105.3885) == 105.39
    assert tick_price(0.123456) == 0.1235  # below $1: 1/100 cent
    assert tick_price(98.36) == 98.36


def test_levels_are_the_engines_from_the_signal_close_on_the_tick():
    rule = ExitRule.of(BacktestOptions(stop_loss=0.02, take_profit=0.05))
    assert rule is not None and not rule.needs_atr
    assert rule.levels(1, 100.37, math.nan) == (98.36, 105.39)
    assert rule.levels(-1, 100.37, math.nan) == (102.38, 95.35)  # a short mirrors
    by_atr = ExitRule.of(BacktestOptions(stop_loss_atr=2.0))
    assert by_atr is not None and by_atr.needs_atr
    assert by_atr.levels(1, 100.0, 0.5) == (99.0, None)
    assert by_atr.levels(1, 100.0, math.nan) == (None, None)  # the ATR is not known yet
    assert ExitRule.of(BacktestOptions()) is None


def test_the_running_atr_is_the_indicators_to_the_bit():
    rng = np.random.default_rng(7)
    close = 100 + np.cumsum(rng.normal(0, 0.1, (300, 3)), axis=0)
    high, low = close + rng.random((300, 3)), close - rng.random((300, 3))
    for a in (high, low, close):
        a[[5, 40], 1] = np.nan  # a symbol without a bar
    expected = atr(high, low, close, 14)
    running = RunningAtr(3, 14)
    for t in range(300):
        running.update(high[t], low[t], close[t])
        np.testing.assert_array_equal(running.value, expected[t])


@pytest.mark.parametrize("name", ["trailing_stop", "trailing_stop_atr"])
def test_a_trailing_exit_is_refused_with_the_fix(name):
    with pytest.raises(ConfigError, match=f"unset {name}.*Signals.trail_stop"):
        ExitRule.of(BacktestOptions(**{name: 0.02}))
