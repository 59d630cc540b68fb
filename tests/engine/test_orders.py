"""Order types, attached exits and margin on hand-made bars (the reference simulator checks
them on random ones, tests/engine/test_kernel.py)."""

from __future__ import annotations

import numpy as np
import pytest

from barlab.bars import Bars
from barlab.engine.backtest import BacktestOptions, simulate
from barlab.engine.costs import Costs
from barlab.engine.orders import exit_levels_nb
from barlab.errors import ConfigError, StrategyError
from barlab.result import orders_frame
from barlab.strategy import Signals


def _bars(rows, volume=1e6):
    """One symbol with explicit (open, high, low, close) rows, an hour apart."""
    arr = np.array(rows, dtype=float)
    n = len(arr)
    ts = (1_672_756_200 * 10**9 + np.arange(n) * 3600 * 10**9).astype(np.int64)
    col = [np.ascontiguousarray(arr[:, k : k + 1]) for k in range(4)]
    return Bars(
        ts_ns=ts, open=col[0], high=col[1], low=col[2], close=col[3],
        volume=np.full((n, 1), volume), symbols=("A",), timeframe="1m", source="demo",
        periods_per_year=98_280,
    )  # fmt: skip


def _run(bars, target_rows, *, size_type="shares", trail=None, **options):
    target = np.full((bars.n_bars, 1), np.nan)
    for t, value in target_rows.items():
        target[t, 0] = value
    trails = None
    if trail is not None:
        trails = np.full_like(target, np.nan)
        for t, value in trail.items():
            trails[t, 0] = value
    options.setdefault("costs", Costs(slippage_bps=0.0))
    sim = simulate(bars, target, BacktestOptions(**options), size_type=size_type, trail_stop=trails)
    return sim, orders_frame(sim, bars.ts_ns, ["A"])


def test_trailing_buy_stop_follows_the_lowest_low_then_fills_at_the_stop():
    rows = [
        (100, 100, 100, 100),  # bar 0: the order is given at this close (watermark 100)
        (100, 100.5, 97, 98),  # stop 100 * 1.05 = 105: not reached; lowest low now 97
        (98, 101, 96, 97),  # stop 97 * 1.05 = 101.85: not reached; lowest 96
        (97, 101, 96.5, 100),  # stop 96 * 1.05 = 100.8: reached, fills at 100.8
        (100, 102, 99, 101),
    ]
    _, orders = _run(_bars(rows), {0: 10.0}, trail={0: 0.05})
    row = orders.row(0, named=True)
    assert (row["kind"], row["fill_bar"], row["status"]) == ("trailing_stop_order", 3, "filled")
    assert row["price"] == pytest.approx(96 * 1.05)


def test_trailing_sell_stop_fills_at_a_gap_open():
    rows = [(100, 100, 100, 100), (100, 104, 99, 103), (95, 96, 94, 95), (95, 95, 95, 95)]
    # long 10 first (market at bar 1), then a trailing sell given at bar 1's close (103):
    # its high watermark is 103 until bar 2, stop 103 * 0.98 = 100.94; bar 2 opens at 95
    _, orders = _run(_bars(rows), {0: 10.0, 1: 0.0}, trail={1: 0.02})
    sell = orders.row(1, named=True)
    assert (sell["kind"], sell["side"], sell["fill_bar"]) == ("trailing_stop_order", "sell", 2)
    assert sell["price"] == 95.0


def test_trailing_orders_are_cancelled_by_a_newer_instruction_and_log_their_stop():
    rows = [(100, 100, 100, 100), (100, 101, 99, 100), (100, 101, 99, 100), (100, 100, 100, 100)]
    _, orders = _run(_bars(rows), {0: 10.0, 2: 10.0}, trail={0: 0.05})
    first = orders.row(0, named=True)
    assert (first["kind"], first["status"], first["fill_bar"]) == (
        "trailing_stop_order",
        "cancelled",
        2,
    )
    assert first["price"] == pytest.approx(99 * 1.05)  # lowest low 99 by then
    assert orders.row(1, named=True)["kind"] == "market"


def test_atr_stop_loss_sits_k_atrs_below_the_entry():
    # true range 2 on every bar, so the ATR(3) is 2 from bar 3 on
    rows = [(100, 101, 99, 100)] * 6 + [(100, 100.5, 95.5, 97), (97, 98, 96, 97)]
    bars = _bars(rows)
    _, orders = _run(bars, {4: 10.0}, stop_loss_atr=2.0, atr_window=3)
    exit_ = orders.filter(orders["kind"] == "stop_loss").row(0, named=True)
    # entry at bar 5's open (100); stop 100 - 2 * 2 = 96, reached by bar 6's low
    assert exit_["fill_bar"] == 6 and exit_["price"] == pytest.approx(96.0)


def test_no_atr_exit_while_the_atr_is_unknown():
    rows = [(100, 101, 99, 100), (100, 100, 90, 91), (91, 92, 90, 91)]
    _, orders = _run(_bars(rows), {0: 10.0}, stop_loss_atr=1.0, atr_window=14)
    assert orders["kind"].to_list() == ["market"]


def test_exit_levels_take_the_tighter_stop():
    # long at 100: a 5 % stop-loss (95) against a trailing stop 2 ATRs (2 each) under 101
    stop, kind, target = exit_levels_nb(1, 100.0, 101.0, 2.0, 0.05, np.inf, np.inf,
                                        np.inf, 3.0, 2.0)  # fmt: skip
    assert (stop, kind, target) == (97.0, 3, 106.0)
    stop, kind, target = exit_levels_nb(-1, 100.0, 99.0, 2.0, 0.05, 0.1, np.inf,
                                        np.inf, np.inf, np.inf)  # fmt: skip
    assert (stop, kind) == (pytest.approx(105.0), 1) and target == pytest.approx(90.0)


def test_size_on_signal_measures_exits_from_the_signal_close_and_gaps_fill_at_the_open():
    # the entry is sent at bar 0's close (100) with a 2 % stop: 98; bar 1 opens at 97.5, below
    # it, so the entry fills there and the stop fills at the same open
    rows = [(100, 100, 100, 100), (97.5, 99, 97, 98), (98, 98, 98, 98)]
    _, orders = _run(
        _bars(rows), {0: 10.0}, stop_loss=0.02, size_on="signal", buying_power_buffer=0.0
    )
    assert orders.select("kind", "fill_bar", "price").rows() == [
        ("market", 1, 97.5),
        ("stop_loss", 1, 97.5),
    ]
    # measured from the fill's open (the default) the stop is 97.5 * 0.98 = 95.55: no exit
    _, orders = _run(_bars(rows), {0: 10.0}, stop_loss=0.02)
    assert orders["kind"].to_list() == ["market"]


def test_margin_lets_buys_borrow_against_the_equity():
    rows = [(100, 100, 100, 100)] * 3
    weight = {0: 1.5}  # 150 % of equity
    _, cash_only = _run(_bars(rows), weight, size_type="weight", cash=10_000.0)
    assert cash_only.row(0, named=True)["qty"] == 100  # 10,000 of cash buys 100 shares
    assert cash_only.row(0, named=True)["reason"] == "insufficient_cash"
    sim, margin = _run(_bars(rows), weight, size_type="weight", cash=10_000.0, margin=2.0)
    assert margin.row(0, named=True)["qty"] == 150 and margin.row(0, named=True)["reason"] == ""
    assert sim.cash[1] == -5_000.0 and sim.equity[1] == 10_000.0


def test_margin_caps_borrowing_at_its_multiple():
    rows = [(100, 100, 100, 100)] * 3
    _, orders = _run(_bars(rows), {0: 3.0}, size_type="weight", cash=10_000.0, margin=2.0)
    assert orders.row(0, named=True)["qty"] == 200  # twice the equity, no more
    assert orders.row(0, named=True)["reason"] == "insufficient_cash"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"stop_loss": 0.02, "stop_loss_atr": 2.0}, "not both"),
        ({"take_profit_atr": -1.0}, "positive multiple of the ATR"),
        ({"atr_window": 0}, "atr_window"),
        ({"margin": 0.5}, "margin is buying power"),
        ({"size_pct": 1.5}, "up to the margin"),
    ],
)
def test_bad_exit_and_margin_options_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        BacktestOptions(**options)


def test_bad_trailing_signals_are_refused():
    shape = (3, 1)
    target = np.full(shape, np.nan)
    with pytest.raises(StrategyError, match="fraction of the price"):
        Signals(target=target, trail_stop=np.full(shape, 1.5)).check(shape)
    both = np.full(shape, 0.02)
    with pytest.raises(StrategyError, match="trailing stop order has no other price"):
        Signals(target=target, trail_stop=both, limit_price=np.full(shape, 10.0)).check(shape)


@pytest.mark.parametrize("bad", [np.inf, -np.inf])
def test_an_infinite_target_is_refused(bad):
    from barlab.engine.backtest import log_capacity, to_target

    target = np.full((4, 1), np.nan)
    target[1, 0] = 1.0
    assert log_capacity(to_target(Signals(target=target), target.shape)) == 3
    target[2, 0] = bad
    with pytest.raises(StrategyError, match="must not contain inf"):
        to_target(Signals(target=target), target.shape)


def test_a_strategy_gives_trailing_stop_orders_through_backtest():
    import barlab
    from barlab.strategy import Strategy

    class TrailIn(Strategy):
        trail: float = 0.05

        def signals(self, bars):
            target = np.full(bars.close.shape, np.nan)
            target[0] = 10.0
            return Signals(target=target, size_type="shares",
                           trail_stop=np.where(np.isnan(target), np.nan, self.trail))  # fmt: skip

    rows = [(100, 100, 100, 100), (100, 100.5, 97, 98), (98, 101, 96, 97), (97, 101, 96.5, 100)]
    result = barlab.backtest(TrailIn(), _bars(rows), slippage_bps=0.0)
    order = result.orders.row(0, named=True)
    assert (order["kind"], order["fill_bar"]) == ("trailing_stop_order", 3)
    assert order["price"] == pytest.approx(96 * 1.05)
