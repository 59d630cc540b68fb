"""A rolling window just long enough for the strategy replays exactly: the window's moving
averages equal the backtest's to the bit, wherever the window starts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from barlab.data.panel import load_bars
from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, bridge_options
from barlab.live.replay import replay, replay_options
from barlab.strategies.sma_crossover import SmaCrossover


def test_a_sixty_bar_window_replays_sma_5_20_exactly(tmp_path: Path):
    # whole-cent demo prices make the two averages tie often: a tie broken by rounding that
    # depends on the window's start once cost this 6 % of its orders
    bars = load_bars(
        ["AAPL", "MSFT", "TSLA"], dt.date(2024, 3, 4), dt.date(2024, 3, 5), timeframe="1m",
        source="demo", data_dir=tmp_path / "data",
    )  # fmt: skip
    options = bridge_options(replay_options(BacktestOptions.from_kwargs()))
    result = replay(
        SmaCrossover(fast=5, slow=20), bars, config=BridgeConfig(options=options, window_bars=60),
        journal_path=tmp_path / "journal.jsonl", timeout_s=60,
    )  # fmt: skip
    assert result.report.n_backtest >= 100
    assert result.report.exact, result.report
