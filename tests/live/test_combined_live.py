"""Several strategies on one account in the live bridge: each child's target is carried from
bar to bar (not recomputed on the rolling window, where an old instruction has rolled out), so
a replay's parity with the backtest is exact even on a short window, and a restart resumes the
carried targets from the journal."""

from __future__ import annotations

import numpy as np
import pytest

from barlab.combined import LiveState, combine
from barlab.engine.backtest import BacktestOptions
from barlab.errors import BrokerError
from barlab.live.bridge import BridgeConfig, LiveBridge, bridge_options
from barlab.live.journal import Journal, JournalState, read_journal
from barlab.live.replay import replay, replay_options
from barlab.live.window import default_window
from barlab.strategies.rsi_mean_reversion import RsiMeanReversion
from barlab.strategies.sma_crossover import SmaCrossover
from tests.conftest import make_bars
from tests.live.conftest import demo_bars
from tests.live.strategies import Schedule

WINDOW = 60
"""Shorter than the time between a child's instructions: its target must outlive the window."""


def two_smas(how: str = "sum"):
    return combine([SmaCrossover(fast=5, slow=20), SmaCrossover(fast=10, slow=40)], how=how,
                   weights=[0.6, 0.4])  # fmt: skip


def schedules():
    """Entries and exits at fixed minutes of the session, far more than WINDOW bars apart
    (their targets do not depend on the window, so only the carried state is tested)."""
    return combine(
        [Schedule(entries="10,200;20;5", exits="150,300;250;100"),
         Schedule(entries="5;30,250;120", exits="100;200,380;240")],
        weights=[0.6, 0.4],
    )  # fmt: skip


def stepped(strategy, bars, window: int | None) -> np.ndarray:
    """The targets of :meth:`Combined.step` bar by bar, on the last ``window`` bars (None:
    all bars so far)."""
    state, rows = strategy.live_state(bars.n_symbols), []
    for t in range(bars.n_bars):
        first = 0 if window is None else max(0, t + 1 - window)
        target, state = strategy.step(bars.slice(first, t + 1), state)
        rows.append(target)
    return np.array(rows)


@pytest.mark.parametrize("how", ["sum", "priority"])
def test_stepping_with_carried_targets_is_the_backtests_target_row_for_row(how):
    bars = make_bars(700, 3)
    both = two_smas(how)
    whole = both.contributions(bars).target
    assert np.isfinite(whole).sum() > 20
    assert np.array_equal(stepped(both, bars, None), whole, equal_nan=True)
    assert np.array_equal(stepped(both, bars, WINDOW), whole, equal_nan=True)
    # the window's own last row forgets a target given before the window: why state is carried
    own = np.array([both.signals(bars.slice(max(0, t + 1 - WINDOW), t + 1)).target[-1]
                    for t in range(bars.n_bars)])  # fmt: skip
    assert not np.array_equal(own, whole, equal_nan=True)


def test_an_entries_exits_child_is_stepped_by_the_kernels_rule():
    bars = make_bars(500, 2, seed=3)
    both = combine([SmaCrossover(fast=5, slow=20), RsiMeanReversion(n=5)], weights=[0.5, 0.5])
    assert np.array_equal(stepped(both, bars, None), both.signals(bars).target, equal_nan=True)


def test_the_window_is_the_longest_childs():
    both = combine([SmaCrossover(fast=5, slow=20), SmaCrossover(fast=10, slow=90)])
    assert default_window(both) == default_window(SmaCrossover(fast=10, slow=90)) == 360


def test_state_round_trips_through_json():
    state = LiveState(held=np.array([[0.2, -0.1]]), sides=np.array([[1, -1]]),
                      combined=np.array([0.12, -0.04]))  # fmt: skip
    back = LiveState.from_json(state.to_json())
    assert back.sides.dtype == np.int64
    for name in ("held", "sides", "combined"):
        assert np.array_equal(getattr(back, name), getattr(state, name))


class NoBroker:
    def get_order_by_client_id(self, coid: str):
        raise BrokerError(f"no order {coid}")


def test_replay_on_a_short_window_is_exact_and_a_restart_resumes_the_carried_targets(tmp_path):
    bars = demo_bars(tmp_path / "data", "2024-03-05", "2024-03-05")
    options = bridge_options(replay_options(BacktestOptions.from_kwargs()))
    journal = tmp_path / "journal.jsonl"
    both = schedules()
    result = replay(both, bars, config=BridgeConfig(options=options, window_bars=WINDOW),
                    journal_path=journal, timeout_s=30)  # fmt: skip
    report = result.report
    assert report.score == 1.0 and report.exact, (report.summary(), report.missed[:3])
    assert report.n_backtest == report.n_bridge >= 10
    # the exits came long after their entries had rolled out of the window
    assert len(result.bridge.filter(result.bridge["side"] == "sell")) >= 4

    last = [r for r in read_journal(journal) if r["kind"] == "bar"][-1]
    whole = both.contributions(bars)
    assert last["combined_state"]["combined"] == whole.combined[-1].tolist()
    restarted = Journal(tmp_path / "again.jsonl")
    again = LiveBridge(
        schedules(), broker=NoBroker(), symbols=bars.symbols, timeframe="1m",
        journal=restarted, config=BridgeConfig(options=options, window_bars=WINDOW),
    )  # fmt: skip
    again.resume(JournalState.load(journal))
    restarted.close()
    assert again.combined_state is not None
    assert again.combined_state.combined.tolist() == whole.combined[-1].tolist()
    assert again.combined_state.held.tolist() == last["combined_state"]["held"]
