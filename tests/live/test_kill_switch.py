"""The daily loss limit's kill switch against a broker whose open order fills a last part while
it is canceled: the closing orders are sized from the positions after the cancels."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, LiveBridge, bridge_options
from barlab.live.journal import Journal
from barlab.live.orders import AccountView
from barlab.live.replay import replay_options
from barlab.strategies.sma_crossover import SmaCrossover


class RacingBroker:
    """Holds 60 AAPL with a buy of 40 more working; canceling it fills those 40 first."""

    def __init__(self) -> None:
        self.held = {"AAPL": 60.0, "MSFT": -10.0}
        self.working = True

    def cancel_all_orders(self) -> list:
        if self.working:
            self.held["AAPL"] += 40.0  # the remainder filled a moment before the cancel landed
            self.working = False
        return []

    def list_orders(self, status: str = "open", **_) -> list:
        return [SimpleNamespace(id="o1")] if self.working else []

    def get_account(self) -> SimpleNamespace:
        return SimpleNamespace(cash=50_000.0, buying_power=50_000.0, last_equity=60_000.0)

    def list_positions(self) -> list:
        return [SimpleNamespace(symbol=s, qty=q) for s, q in self.held.items()]


def test_the_kill_switch_closes_what_filled_while_it_canceled(tmp_path: Path):
    options = bridge_options(replay_options(BacktestOptions.from_kwargs(daily_loss_limit=100.0)))
    broker = RacingBroker()
    journal = Journal(tmp_path / "journal.jsonl")
    bridge = LiveBridge(
        SmaCrossover(), broker=broker, symbols=("AAPL", "MSFT"), timeframe="1m",
        journal=journal, config=BridgeConfig(options=options, window_bars=200),
    )  # fmt: skip
    seen = AccountView(  # what the bridge read before it knew the limit was hit
        positions=np.array([60.0, -10.0]), closes=np.array([100.0, 50.0]), cash=50_000.0,
        buying_power=50_000.0,
    )  # fmt: skip
    intents = bridge._kill_switch(1_709_560_000_000_000_000, seen, 55_500.0, 60_000.0)
    journal.close()
    closing = {i.symbol: (i.side, i.qty) for i in intents}
    assert closing == {"AAPL": ("sell", 100.0), "MSFT": ("buy", 10.0)}
