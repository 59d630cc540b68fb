"""A rolling window just long enough for the strategy replays exactly: the window's moving
averages equal the backtest's to the bit, wherever the window starts."""

from __future__ import annotations

from pathlib import Path

from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, bridge_options
from barlab.live.replay import replay, replay_options
from barlab.strategies.sma_crossover import SmaCrossover
from tests.live.conftest import demo_bars


def test_a_sixty_bar_window_replays_sma_5_20_exactly(tmp_path: Path):
    # whole-cent demo prices make the two averages tie often: a tie broken by rounding that
    # depends on the window's start once cost this 6 % of its orders
    bars = demo_bars(tmp_path / "data", "2024-03-04", "2024-03-05")
    options = bridge_options(replay_options(BacktestOptions.from_kwargs()))
    result = replay(
        SmaCrossover(fast=5, slow=20), bars, config=BridgeConfig(options=options, window_bars=60),
        journal_path=tmp_path / "journal.jsonl", timeout_s=60,
    )  # fmt: skip
    assert result.report.n_backtest >= 100
    assert result.report.exact, result.report
