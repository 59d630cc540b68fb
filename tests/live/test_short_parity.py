"""A short-selling strategy at full equity replays with exact parity: the backtest checks each
order against Alpaca's buying power (multiplier x equity less the gross exposure, so a short
takes power like a long and its proceeds are not spendable), as the emulator does, so the
broker refuses nothing the backtest would send."""

from __future__ import annotations

from pathlib import Path

import pytest

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions
from barlab.live.bridge import BridgeConfig, bridge_options
from barlab.live.journal import read_journal
from barlab.live.replay import replay, replay_options
from barlab.strategies.sma_crossover import SmaCrossover
from tests.live.conftest import demo_bars

SYMBOLS = ["AAPL", "MSFT", "TSLA"]


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Bars:
    """Five sessions (2024-03-04 to 03-08) of 1-minute demo bars on three symbols."""
    return demo_bars(tmp_path_factory.mktemp("data"), "2024-03-04", "2024-03-08")


@pytest.mark.parametrize("margin", [1.0, 2.0], ids=["cash", "reg-t"])
def test_a_week_of_flips_at_full_equity_replays_with_exact_parity(
    week: Bars, tmp_path: Path, margin: float
):
    # all the buying power at work: the emulator's multiplier is the backtest's margin
    opts = BacktestOptions.from_kwargs(size_pct=margin, margin=margin)
    options = bridge_options(replay_options(opts))
    journal = tmp_path / "journal.jsonl"
    result = replay(
        SmaCrossover(allow_short=True), week, config=BridgeConfig(options=options, window_bars=200),
        journal_path=journal, timeout_s=30,
    )  # fmt: skip
    report = result.report
    assert report.exact, (report.summary(), report.missed[:3], report.mismatched[:3])
    assert report.score == 1.0 and report.matched == report.n_backtest == report.n_bridge >= 150
    assert set(result.backtest["symbol"]) == set(SYMBOLS)
    records = list(read_journal(journal))
    assert not [r for r in records if r["kind"] == "submit" and r.get("error")]  # none refused
    # the rule binds: orders were cut to the buying power, and flips were sent as two orders
    cut = [r for r in records if r["kind"] == "intent" and r["reason"] == "insufficient_cash"]
    assert len(cut) >= 10 and all(0 < r["qty"] < r["requested_qty"] for r in cut if r["after"])
    assert len([r for r in records if r["kind"] == "intent" and r["after"]]) >= 30
